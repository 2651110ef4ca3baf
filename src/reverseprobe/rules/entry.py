"""The PACS entry: the AE title, the address the PACS must dial, and the port."""

from __future__ import annotations

from collections.abc import Mapping

from reverseprobe.config import CheckConfig
from reverseprobe.model import PacsEntry, ProbeResult, Status
from reverseprobe.probes.interfaces import InterfacesResult


def pacs_entry(probes: Mapping[str, ProbeResult], cfg: CheckConfig) -> PacsEntry:
    """For a PACS on the same LAN: the LAN address (the source of the default route)."""
    ifs = probes.get("interfaces")
    lan = ifs.lan_address if isinstance(ifs, InterfacesResult) and ifs.status is Status.OK else None
    return PacsEntry(
        aet=cfg.aet or "",
        host=lan,
        port=cfg.port,
        note="for a PACS on the same LAN" if lan else "this PC's address could not be read",
    )
