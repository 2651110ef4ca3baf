"""`forward`'s findings and PACS entry, from what it found and did (pure): the entry point
commands/forward.py reads as `advice`. The announcement and the manual steps: announce.py; the
IPv4 mapping: mapping.py; the IPv6 pinhole: pinhole.py.
"""

from __future__ import annotations

from reverseprobe.diagnosis.forward.announce import Context, announcement
from reverseprobe.diagnosis.forward.mapping import findings, pacs_entry
from reverseprobe.diagnosis.forward.pinhole import (
    pinhole_entry,
    pinhole_findings,
    with_pinhole,
    with_pinhole_entry,
)

__all__ = [
    "Context",
    "announcement",
    "findings",
    "pacs_entry",
    "pinhole_entry",
    "pinhole_findings",
    "with_pinhole",
    "with_pinhole_entry",
]
