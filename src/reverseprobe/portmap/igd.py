"""The router's UPnP IGD WANIPConnection service, with a timeout on every call.

The calls go through `soap.BoundedUpnp` (a byte cap and a read deadline on every answer of the
router; miniupnpc read them without bound), or any object with miniupnpc.UPnP's methods. Each
call also runs in a daemon thread and is abandoned at its share of the deadline (the Igd is then
unusable). Errors from miniupnpc-style objects are plain `Exception`s naming the UPnP error:
`errors.from_miniupnpc` gives back the code, meaning and fix.

Every value the router returns is validated here, at the edge (UPnP IGD WANIPConnection:2,
2.2): ports 1-65535 in ASCII digits, NewInternalClient and NewExternalIPAddress IP addresses,
leases 0-2^32-1, descriptions capped at MAX_DESCRIPTION characters. A value that fails is
`UpnpGarbage` ("the router answered garbage"), never shown as if it were the router's state.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from reverseprobe.deadline import Deadline
from reverseprobe.model.forward import PortMapping as PortMapping
from reverseprobe.portmap.errors import UpnpError, UpnpGarbage, UpnpTimeout, from_miniupnpc
from reverseprobe.portmap.ssdp import SsdpResponse, discover_igd
from reverseprobe.textsafe import clip, quote

_T = TypeVar("_T")
PROTOCOLS = ("TCP", "UDP")
DEFAULT_CALL_TIMEOUT = 4.0
DEFAULT_DISCOVER_TIMEOUT = 2.0
MAX_DESCRIPTION = 256  # NewPortMappingDescription: miniupnpd keeps 64, routers rarely more
MAX_STATUS = 64  # NewConnectionStatus is one word (Connected, Disconnected, ...)


def bounded_call(fn: Callable[[], _T], timeout: float, what: str) -> _T:
    """Run `fn` in a daemon thread; its result, its exception, or UpnpTimeout after `timeout`."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def _run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=_run, name=f"upnp-{what}", daemon=True).start()
    if not done.wait(max(0.0, timeout)):
        raise UpnpTimeout(what, timeout)
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


class Igd:
    """A selected IGD. Every method raises UpnpError (UpnpTimeout when the router is silent)."""

    def __init__(  # noqa: PLR0913 - keyword-only fields of the IGD it wraps
        self,
        upnp: Any,
        *,
        location: str,
        control_url: str,
        lan_address: str,
        timeout: float = DEFAULT_CALL_TIMEOUT,
        deadline: Deadline | None = None,
        ssdp: SsdpResponse | None = None,
    ) -> None:
        self._upnp = upnp
        self.location = location
        self.control_url = control_url
        self.lan_address = lan_address  # our address toward the IGD (miniupnpc lanaddr)
        self.timeout = timeout
        self.deadline = deadline
        self.ssdp = ssdp
        self._lock = threading.Lock()
        self._broken: str | None = None

    def __repr__(self) -> str:
        return f"<Igd {self.location} control={self.control_url} lan={self.lan_address}>"

    def _call(self, what: str, fn: Callable[[Any], _T]) -> _T:
        with self._lock:
            if self._broken is not None:
                raise UpnpTimeout(f"{what} (after an earlier {self._broken} timed out)", 0.0)
            t = self.timeout
            if self.deadline is not None:
                t = self.deadline.share(t)
            upnp = self._upnp
            try:
                return bounded_call(lambda: fn(upnp), t, what)
            except UpnpTimeout:
                self._broken = what
                raise
            except Exception as exc:
                raise from_miniupnpc(exc) from exc

    def status(self) -> tuple[str, int | None, str | None]:
        """(connection status, uptime in seconds, last connection error) (GetStatusInfo)."""
        st, uptime, last = self._call("GetStatusInfo", lambda u: u.statusinfo())
        what = "GetStatusInfo"
        up = None if uptime in (None, "") else wire_uint(uptime, what, "NewUptime", 2**32 - 1)
        return (
            wire_text(st, what, "NewConnectionStatus", MAX_STATUS),
            up,
            wire_text(last, what, "NewLastConnectionError", MAX_STATUS) or None,
        )

    def external_ip(self) -> str | None:
        """GetExternalIPAddress; None when the router has none (miniupnpd with a reserved WAN)."""
        ip = self._call("GetExternalIPAddress", lambda u: u.externalipaddress())
        text = "" if ip is None else str(ip).strip()
        if not text:
            return None
        return wire_ip(text, "GetExternalIPAddress", "NewExternalIPAddress")

    def get_mapping(self, external_port: int, protocol: str = "TCP") -> PortMapping | None:
        """GetSpecificPortMappingEntry; None when absent (miniupnpc also hides errors as None)."""
        proto = _proto(protocol)
        eport = _port(external_port)
        r = self._call(
            "GetSpecificPortMappingEntry", lambda u: u.getspecificportmapping(eport, proto)
        )
        if r is None:
            return None
        what = "GetSpecificPortMappingEntry"
        iaddr, iport, desc, enabled, lease = r
        return PortMapping(
            external_port=eport,
            protocol=proto,
            internal_client=wire_ip(iaddr, what, "NewInternalClient", v4_only=True),
            internal_port=wire_port(iport, what, "NewInternalPort"),
            description=wire_text(desc, what, "NewPortMappingDescription", MAX_DESCRIPTION),
            enabled=wire_bool(enabled, what),
            lease=wire_uint(lease, what, "NewLeaseDuration", 2**32 - 1),
        )

    def list_mappings(self, limit: int = 256) -> list[PortMapping]:
        """GetGenericPortMappingEntry from index 0 until the router says there is no more."""
        out: list[PortMapping] = []
        for i in range(max(0, limit)):
            r = self._call("GetGenericPortMappingEntry", _generic_entry(i))
            if r is None:
                break
            what = "GetGenericPortMappingEntry"
            eport, proto, (iaddr, iport), desc, enabled, rhost, lease = r
            p = str(proto).strip().upper()
            if p not in PROTOCOLS:
                raise UpnpGarbage(what, f"NewProtocol {quote(proto, 20)}")
            out.append(
                PortMapping(
                    external_port=wire_port(eport, what, "NewExternalPort"),
                    protocol=p,
                    internal_client=wire_ip(iaddr, what, "NewInternalClient", v4_only=True),
                    internal_port=wire_port(iport, what, "NewInternalPort"),
                    description=wire_text(desc, what, "NewPortMappingDescription", MAX_DESCRIPTION),
                    enabled=wire_bool(enabled, what),
                    lease=wire_uint(lease, what, "NewLeaseDuration", 2**32 - 1),
                    remote_host=wire_ip(rhost, what, "NewRemoteHost") if rhost else "",
                )
            )
        return out

    def add_mapping(  # noqa: PLR0913, PLR0917 - the positional order of IGD AddPortMapping
        self,
        external_port: int,
        internal_client: str,
        internal_port: int,
        description: str,
        lease: int = 0,
        protocol: str = "TCP",
        remote_host: str = "",
    ) -> None:
        """AddPortMapping, for any remote host unless `remote_host` names one (NewRemoteHost).
        Raises UpnpError (606, 718, 725, 726, 728, ...)."""
        proto = _proto(protocol)
        eport, iport = _port(external_port), _port(internal_port)
        if not 0 <= lease <= 2**32 - 1:
            raise ValueError(f"lease out of range: {lease}")
        self._call(
            "AddPortMapping",
            lambda u: u.addportmapping(
                eport, proto, internal_client, iport, description, remote_host, lease
            ),
        )

    def delete_mapping(self, external_port: int, protocol: str = "TCP") -> None:
        """DeletePortMapping for any remote host. Raises UpnpError (714 when absent)."""
        proto = _proto(protocol)
        eport = _port(external_port)
        self._call("DeletePortMapping", lambda u: u.deleteportmapping(eport, proto, ""))


def wire_uint(value: object, what: str, name: str, most: int) -> int:
    """An unsigned integer from the router: ASCII digits (or an int), 0..most, else garbage."""
    if isinstance(value, bool):
        raise UpnpGarbage(what, f"{name} {quote(value, 30)}")
    if isinstance(value, int):
        n = value
    else:
        text = str(value).strip()
        if not 0 < len(text) <= 10 or not all("0" <= c <= "9" for c in text):
            raise UpnpGarbage(what, f"{name} {quote(text, 30)} is not a number")
        n = int(text)
    if not 0 <= n <= most:
        raise UpnpGarbage(what, f"{name} {n} is out of range (0-{most})")
    return n


def wire_port(value: object, what: str, name: str) -> int:
    """A TCP/UDP port from the router: 1-65535 (miniupnpc showed 99999999999 as 34463)."""
    n = wire_uint(value, what, name, 10**10)
    if not 1 <= n <= 65535:
        raise UpnpGarbage(what, f"{name} {n} is not a port (1-65535)")
    return n


def wire_ip(value: object, what: str, name: str, *, v4_only: bool = False) -> str:
    """An IP address from the router, in its canonical form; anything else is garbage."""
    text = str(value).strip()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise UpnpGarbage(what, f"{name} {quote(text, 60)} is not an IP address") from None
    if v4_only and ip.version != 4:
        raise UpnpGarbage(what, f"{name} {quote(text, 60)} is not an IPv4 address")
    return str(ip)


def wire_text(value: object, what: str, name: str, most: int) -> str:
    """A free-text value from the router, cut to `most` characters (escaped where shown)."""
    del what, name  # free text is never garbage; it is only shown escaped (textsafe)
    return clip("" if value is None else str(value), most)


def wire_bool(value: object, what: str) -> bool:
    """NewEnabled: 1/0 (UPnP boolean: also true/false, yes/no; miniupnpc objects give bools)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no", ""):
        return False
    raise UpnpGarbage(what, f"NewEnabled {quote(text, 20)}")


def _generic_entry(index: int) -> Callable[[Any], Any]:
    return lambda u: u.getgenericportmapping(index)


def _proto(protocol: str) -> str:
    p = protocol.upper()
    if p not in PROTOCOLS:
        raise ValueError(f"protocol must be TCP or UDP, not {protocol!r}")
    return p


def _port(port: int) -> int:
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port out of range: {port}")
    return int(port)


def connect_igd(
    location: str,
    timeout: float,
    *,
    deadline: Deadline | None = None,
    ssdp: SsdpResponse | None = None,
) -> Igd:
    """Read the device description at `location` (at most soap.MAX_DESCRIPTION bytes) and
    select its WAN connection service. Raises UpnpError when it cannot be read or has none,
    UpnpGarbage when what the router sent is no description."""
    from reverseprobe.portmap.soap import BoundedUpnp

    t = deadline.share(timeout) if deadline is not None else timeout

    def _select() -> tuple[Any, str]:
        u = BoundedUpnp(location, timeout=max(0.05, t - 0.05))
        return u, str(u.selectigd(location))

    try:
        upnp, control_url = bounded_call(_select, t, "reading the IGD description")
    except UpnpError:
        raise
    except Exception as exc:
        raise from_miniupnpc(exc) from exc
    if isinstance(upnp, BoundedUpnp):
        upnp.timeout = timeout  # each later SOAP exchange: its own deadline, not the select's
    if not control_url:
        raise UpnpError(
            None,
            "No UPnP device discovered",
            f"{location} names no WAN service",
            "turn UPnP on in the router, or add the forwarding rule by hand",
        )
    return Igd(
        upnp,
        location=location,
        control_url=control_url,
        lan_address=str(upnp.lanaddr or ""),
        timeout=timeout,
        deadline=deadline,
        ssdp=ssdp,
    )


def find_igd(
    gateway: str | None,
    deadline: Deadline,
    *,
    discover_timeout: float = DEFAULT_DISCOVER_TIMEOUT,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
) -> Igd | None:
    """SSDP discovery (`ssdp.discover_igd`) then `connect_igd`, both inside `deadline`.

    None when no IGD answered; UpnpError when one answered but its description could not be
    read. The returned Igd bounds each later call by `call_timeout` and the deadline.
    """
    resp = discover_igd(gateway, deadline.share(discover_timeout, reserve=0.1))
    if resp is None:
        return None
    return connect_igd(resp.location, call_timeout, deadline=deadline, ssdp=resp)
