"""The PACS entry, in one place for every command: the AE title, the address the PACS must
dial and the port (docs/reference.md "pacs_entry": the public address when this PC is behind NAT
and the PACS is outside, else the address this PC has toward the PACS).

Each command states what it measured as EntryFacts; `pacs_entry` decides. A fact left None was
not measured, and the entry then says what is missing instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reverseprobe.addresses import is_publicly_routable
from reverseprobe.config import CheckConfig
from reverseprobe.model import PacsEntry, ProbeResult

if TYPE_CHECKING:
    from reverseprobe.diagnosis.nat import PublicView

DYNAMIC = (
    " A dynamic public address changes when the line reconnects and breaks this entry: "
    "use a static address or a DNS name that follows it."
)


@dataclass(frozen=True)
class EntryFacts:
    aet: str
    port: int  # the port the PACS dials (the router's external port after `forward`)
    local_port: int  # the port this PC listens on
    lan: str | None  # this PC's address (toward the PACS where that is known)
    public: str | None = None  # the public address an outside source saw
    public_checked: bool = False  # some source of the public address was asked
    public_note: str | None = None  # why the public address is not known
    public_on_pc: bool | None = None  # the public address is this PC's own
    behind_nat: bool | None = None
    double_nat: str | None = None  # why another NAT sits beyond the router
    consistent: bool | None = None  # the sources of the public address agree
    pacs_outside: bool | None = None  # None: no PACS in view (check, forward)
    suffix: str = ""  # what the command adds (move-test: the SCU's own settings)


def pacs_entry(f: EntryFacts) -> PacsEntry:
    lan, public, port = f.lan, f.public, f.port
    if f.pacs_outside is False:
        host, note = (
            lan,
            f"The PACS is on a private network: it dials this PC's address there ({lan}).",
        )
    elif (public and (f.public_on_pc or (lan is not None and lan == public))) or (
        lan is not None and is_publicly_routable(lan)
    ):
        host = public or lan
        note = "This PC has the public address itself: no NAT in between." + DYNAMIC
    elif public and (f.behind_nat or f.pacs_outside):
        host = public
        if f.double_nat:
            note = (
                f"The public address, behind double NAT: forwarding TCP {port} on your router "
                f"is not enough (see NAT_DOUBLE: {f.double_nat})."
            )
        else:
            note = (
                f"Behind NAT: the PACS must dial the public address {public}; the router must "
                f"forward TCP {port} to {lan or 'this PC'}:{f.local_port}."
            )
        if f.consistent is False:
            note += " Sources disagree about it (see PUBLIC_IP_INCONSISTENT)."
        note += DYNAMIC + _same_lan(f)
    elif f.behind_nat and f.public_checked:
        host = None
        note = "Behind NAT, but the public address is unknown (see PUBLIC_IP_UNKNOWN)."
        note += _same_lan(f)
    elif f.pacs_outside:
        host = lan
        why = f.public_note or "not measured"
        note = (
            f"The PACS is outside this network but the public address is unknown ({why}): if "
            f"this PC is behind NAT, give the PACS the network's public address instead of "
            f"{lan or 'the LAN address'}, and forward TCP port {port} on the router to this PC."
        )
    elif lan:
        host = lan
        note = "For a PACS on the same LAN" + (
            "; the public address was not checked (--no-public-ip)."
            if not f.public_checked
            else "."
        )
    else:
        host, note = None, "This PC's address could not be read."
    if f.suffix:
        note = f"{note} {f.suffix}"
    return PacsEntry(aet=f.aet, host=host, port=port, note=note)


def _same_lan(f: EntryFacts) -> str:
    return f" For a PACS on the same LAN: {f.lan}." if f.lan and f.pacs_outside is None else ""


PREFERS_IPV6 = (
    "A PACS given a host name with both an A and an AAAA record usually tries IPv6 first "
    "(RFC 6724 address selection, RFC 8305 Happy Eyeballs): either give it one address "
    "literal, or make both ways in work."
)


def with_other_family(
    entry: PacsEntry, main_family: str | None, other: tuple[str, str] | None, port: int
) -> PacsEntry:
    """`entry` plus the other family's address, saying which one the PACS will use."""
    if other is None or entry.host is None or main_family is None:
        return entry
    fam, host = other
    if fam == main_family or host == entry.host:
        return entry
    label = {"ipv4": "IPv4", "ipv6": "IPv6"}
    note = (
        f"Over {label.get(fam, fam)}: {host} port {port}"
        + (
            " (no NAT on IPv6: the router's IPv6 firewall must allow inbound TCP "
            f"{port}, no forwarding is needed)."
            if fam == "ipv6"
            else "."
        )
        + " "
        + PREFERS_IPV6
    )
    main = (
        f"{entry.note} Also reachable over {label.get(fam, fam)} at {host} (see "
        f"alternatives); an address literal {entry.host} makes the PACS use "
        f"{label.get(main_family, main_family)}."
    )
    return PacsEntry(
        aet=entry.aet,
        host=entry.host,
        port=entry.port,
        note=main,
        alternatives=(*entry.alternatives, (fam, host, note)),
    )


def check_entry(probes: Mapping[str, ProbeResult], cfg: CheckConfig) -> PacsEntry:
    """`check`'s entry, from what its probes say about the public address."""
    from reverseprobe.diagnosis.nat import public_view

    v = public_view(probes)
    virtual = _virtual_nat(probes)  # issue 13: the address inside a container/VM is no entry
    others = [f for f in v.families if f.family != v.family and f.address]
    other = (others[0].family, others[0].address) if others and others[0].address else None
    return with_other_family(_check_entry(v, cfg, virtual), v.family, other, cfg.port)


def _check_entry(v: PublicView, cfg: CheckConfig, virtual: str) -> PacsEntry:
    return pacs_entry(
        EntryFacts(
            aet=cfg.aet or "",
            port=cfg.port,
            local_port=cfg.port,
            lan=None if virtual else v.lan_address,
            public=v.address,
            public_checked=v.checked,
            public_on_pc=v.local,
            behind_nat=v.behind_nat,
            double_nat=v.double_nat,
            consistent=v.consistent,
            suffix=virtual,
        )
    )


def _virtual_nat(probes: Mapping[str, ProbeResult]) -> str:
    from reverseprobe.diagnosis.virtual import KIND_NAMES
    from reverseprobe.model.virtual import VirtualResult

    vr = probes.get("virtual")
    if not isinstance(vr, VirtualResult) or vr.verdict != "virtual-nat":
        return ""
    what = KIND_NAMES.get(vr.kind or "", "a container or VM")
    return (
        f"This PC is {what} behind its host's NAT ({vr.address}): "
        "the PACS must dial the host's address, with the port published on the host "
        "(see NAT_VIRTUAL)."
    )
