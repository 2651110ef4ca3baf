"""The router's UPnP IGD WANIPConnection service, through miniupnpc, with a timeout on every call.

miniupnpc releases the GIL but its sockets wait up to 3 s to connect and 5 s per read, and a
router that trickles bytes can hold a call longer; threads cannot be killed. So each call runs
in a daemon thread and is abandoned at its timeout (the Igd is then unusable: the abandoned
call may still touch the miniupnpc object). miniupnpc's errors are plain `Exception`s naming
the UPnP error: `errors.from_miniupnpc` gives back the code, meaning and fix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from reverseprobe.portmap.errors import UpnpError, UpnpTimeout, from_miniupnpc
from reverseprobe.portmap.ssdp import SsdpResponse, discover_igd
from reverseprobe.runner import Deadline

_T = TypeVar("_T")
PROTOCOLS = ("TCP", "UDP")
DEFAULT_CALL_TIMEOUT = 4.0
DEFAULT_DISCOVER_TIMEOUT = 2.0


@dataclass(frozen=True)
class PortMapping:
    """One entry of the router's port mapping table (IGD GetSpecific/GenericPortMappingEntry)."""

    external_port: int
    protocol: str
    internal_client: str
    internal_port: int
    description: str
    enabled: bool
    lease: int  # seconds left; 0 = permanent
    remote_host: str = ""


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

    def __init__(
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
        return str(st), (int(uptime) if uptime is not None else None), (str(last) or None)

    def external_ip(self) -> str | None:
        """GetExternalIPAddress; None when the router has none (miniupnpd with a reserved WAN)."""
        ip = self._call("GetExternalIPAddress", lambda u: u.externalipaddress())
        return str(ip) or None

    def get_mapping(self, external_port: int, protocol: str = "TCP") -> PortMapping | None:
        """GetSpecificPortMappingEntry; None when absent (miniupnpc also hides errors as None)."""
        proto = _proto(protocol)
        eport = _port(external_port)
        r = self._call(
            "GetSpecificPortMappingEntry", lambda u: u.getspecificportmapping(eport, proto)
        )
        if r is None:
            return None
        iaddr, iport, desc, enabled, lease = r
        return PortMapping(
            external_port=eport,
            protocol=proto,
            internal_client=str(iaddr),
            internal_port=int(iport),
            description=str(desc),
            enabled=bool(enabled),
            lease=int(lease),
        )

    def list_mappings(self, limit: int = 256) -> list[PortMapping]:
        """GetGenericPortMappingEntry from index 0 until the router says there is no more."""
        out: list[PortMapping] = []
        for i in range(max(0, limit)):
            r = self._call("GetGenericPortMappingEntry", _generic_entry(i))
            if r is None:
                break
            eport, proto, (iaddr, iport), desc, enabled, rhost, lease = r
            out.append(
                PortMapping(
                    external_port=int(eport),
                    protocol=str(proto).upper(),
                    internal_client=str(iaddr),
                    internal_port=int(iport),
                    description=str(desc),
                    enabled=str(enabled).strip() not in ("0", "", "false"),
                    lease=int(lease),
                    remote_host=str(rhost or ""),
                )
            )
        return out

    def add_mapping(  # noqa: PLR0917 - the positional order of IGD AddPortMapping
        self,
        external_port: int,
        internal_client: str,
        internal_port: int,
        description: str,
        lease: int = 0,
        protocol: str = "TCP",
    ) -> None:
        """AddPortMapping for any remote host. Raises UpnpError (606, 718, 725, 728, ...)."""
        proto = _proto(protocol)
        eport, iport = _port(external_port), _port(internal_port)
        if not 0 <= lease <= 2**32 - 1:
            raise ValueError(f"lease out of range: {lease}")
        self._call(
            "AddPortMapping",
            lambda u: u.addportmapping(
                eport, proto, internal_client, iport, description, "", lease
            ),
        )

    def delete_mapping(self, external_port: int, protocol: str = "TCP") -> None:
        """DeletePortMapping for any remote host. Raises UpnpError (714 when absent)."""
        proto = _proto(protocol)
        eport = _port(external_port)
        self._call("DeletePortMapping", lambda u: u.deleteportmapping(eport, proto, ""))


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
    """Read the device description at `location` and select its WAN connection service
    (miniupnpc `selectigd(url)`). Raises UpnpError when it cannot be read or has none."""
    import miniupnpc

    def _select() -> tuple[Any, str]:
        u = miniupnpc.UPnP()
        return u, str(u.selectigd(location))

    t = deadline.share(timeout) if deadline is not None else timeout
    try:
        upnp, control_url = bounded_call(_select, t, "reading the IGD description")
    except UpnpError:
        raise
    except Exception as exc:
        raise from_miniupnpc(exc) from exc
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
