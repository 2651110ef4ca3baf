"""This PC's addresses as a PACS sees them: the LAN address, the source address toward the
PACS, and the public address when the PACS is outside this network (behind NAT the PACS must
dial the public one). The public address is asked for only then, and never with --no-public-ip.
"""

from __future__ import annotations

import socket

from reverseprobe.concurrent import CallTimeout, call_with_timeout, start
from reverseprobe.config import MoveTestConfig
from reverseprobe.model.move import AddressView as AddressView
from reverseprobe.model.move import behind_nat as behind_nat
from reverseprobe.model.move import pacs_outside as pacs_outside
from reverseprobe.runner import Deadline

# --- reading them ---------------------------------------------------


class AddressLookup:
    """Resolves the PACS, the source address toward it and (when the PACS is outside) the
    public address, in a daemon thread while the DICOM steps run."""

    def __init__(self, cfg: MoveTestConfig, pacs_ip: str | None, dl: Deadline) -> None:
        self._call = start(lambda: lookup_addresses(cfg, pacs_ip, dl), name="move-test-addresses")

    def result(self, timeout: float) -> AddressView:
        if not self._call.wait(timeout):
            return AddressView(public_note="not measured: the lookup did not finish in time")
        view = self._call.outcome()
        if isinstance(view, Exception):  # an address we cannot read is "unknown"
            return AddressView(public_note=f"not measured: {type(view).__name__}: {view}")
        if isinstance(view, BaseException):
            raise view
        assert isinstance(view, AddressView)
        return view


def lookup_addresses(cfg: MoveTestConfig, pacs_ip: str | None, dl: Deadline) -> AddressView:
    """This PC's LAN address, its source address toward the PACS, and (only when the PACS
    is outside this network and --no-public-ip is not given) the public address."""
    from reverseprobe.addresses import is_publicly_routable
    from reverseprobe.probes.interfaces import route_source

    lan = route_source("203.0.113.1", socket.AF_INET)  # RFC 5737: a UDP connect sends nothing
    toward = None
    if pacs_ip:
        fam = socket.AF_INET6 if ":" in pacs_ip else socket.AF_INET
        toward = route_source(pacs_ip, fam)
    outside = pacs_outside(pacs_ip)
    if toward and is_publicly_routable(toward):
        return AddressView(lan=lan, toward_pacs=toward, pacs_ip=pacs_ip, public=toward)
    if not outside:
        note = "not needed: the PACS is on a private network"
        return AddressView(lan=lan, toward_pacs=toward, pacs_ip=pacs_ip, public_note=note)
    if not cfg.public_ip:
        note = "not measured: --no-public-ip"
        return AddressView(lan=lan, toward_pacs=toward, pacs_ip=pacs_ip, public_note=note)
    try:
        from reverseprobe.probes.public_ip import probe_public_ip
    except ImportError:
        note = "not measured: no public-IP probe in this build"
        return AddressView(lan=lan, toward_pacs=toward, pacs_ip=pacs_ip, public_note=note)
    res = probe_public_ip(cfg.ip_services, dl)
    address = getattr(res, "address", None)
    return AddressView(
        lan=lan,
        toward_pacs=toward,
        pacs_ip=pacs_ip,
        public=address,
        public_consistent=getattr(res, "consistent", None),
        public_note=None if address else f"not measured: {res.reason or 'no service answered'}",
    )


def resolve(host: str, timeout: float) -> tuple[str | None, str | None]:
    """(address, None) or (None, why), within `timeout`: getaddrinfo has no timeout of its
    own, so it runs in a daemon thread that is abandoned when it takes too long."""

    def run() -> list[str]:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        v4 = [str(i[4][0]) for i in infos if i[0] == socket.AF_INET]
        return v4 or [str(i[4][0]) for i in infos]

    try:
        addrs = call_with_timeout(run, timeout, name="move-test-resolve")
    except CallTimeout:
        return None, f"resolving {host!r} took longer than {timeout:.1f} s"
    except Exception as exc:  # noqa: BLE001 - OSError, or a broken resolver library
        return None, f"cannot resolve {host!r}: {exc}"
    return (addrs[0].split("%", 1)[0], None) if addrs else (None, "no address")
