"""The PACS entry: AE title, the address the PACS must dial, and the port (docs/reference.md: the
public address when behind NAT, else the LAN address)."""

from __future__ import annotations

from collections.abc import Mapping

from reverseprobe.config import CheckConfig
from reverseprobe.model import PacsEntry, ProbeResult
from reverseprobe.rules.network import public_view


def pacs_entry(probes: Mapping[str, ProbeResult], cfg: CheckConfig) -> PacsEntry:
    v = public_view(probes)
    lan, public, port = v.lan_address, v.address, cfg.port
    same_lan = f" For a PACS on the same LAN: {lan}." if lan else ""
    dynamic = (
        " A dynamic public address changes when the line reconnects and breaks this entry: "
        "use a static address or a DNS name that follows it."
    )
    if v.local and public:
        host, note = public, "this PC's own public address: no NAT in between." + dynamic
    elif v.behind_nat and public:
        host = public
        if v.double_nat:
            note = (
                f"the public address, behind double NAT: forwarding TCP {port} on your router "
                "is not enough (see NAT_DOUBLE)."
            )
        else:
            note = (
                f"the public address of this network (behind NAT): the router must forward "
                f"TCP {port} to {lan or 'this PC'}:{port}."
            )
        if v.consistent is False:
            note += " Sources disagree about it (see PUBLIC_IP_INCONSISTENT)."
        note += dynamic + same_lan
    elif v.behind_nat and v.checked:
        host = None
        note = "behind NAT, but the public address is unknown (see PUBLIC_IP_UNKNOWN)." + same_lan
    elif lan:
        host = lan
        note = "for a PACS on the same LAN" + (
            "; the public address was not checked (--no-public-ip)" if not v.checked else ""
        )
    else:
        host, note = None, "this PC's address could not be read"
    return PacsEntry(aet=cfg.aet or "", host=host, port=port, note=note)
