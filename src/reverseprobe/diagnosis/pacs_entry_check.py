"""The entry the PACS administrator already made for this SCU (AE title -> host:port), held
against the one PACS entry (diagnosis/entry.py `pacs_entry`) that the measurements give
(issue 13; SPEC cause 2). Pure. Each wrong part is named with what it must be; a part that
could not be measured is said so, never passed. NAT_HAIRPIN: a PACS inside the site given the
public address depends on the router's hairpin NAT (often absent: miniupnpd refuses it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reverseprobe.addresses import AddressClass, classify
from reverseprobe.config import CheckConfig, PacsEntryGiven
from reverseprobe.diagnosis.catalogue import make
from reverseprobe.model import Finding, PacsEntry, ProbeResult, Severity
from reverseprobe.model.virtual import VirtualResult


@dataclass(frozen=True)
class EntryTruth:
    """What was measured, beside the entry `pacs_entry` decided."""

    entry: PacsEntry
    aet: str | None  # this SCU's AE title (None: not given)
    lan: str | None
    public: str | None
    behind_nat: bool | None
    pacs_outside: bool | None  # None: the PACS's place is not known (check)
    virtual_address: str | None = None  # this PC's address inside a container/VM NAT
    hairpin: bool | None = None  # measured: the router hairpins (None: not measured)


def entry_rules(
    given: PacsEntryGiven, t: EntryTruth, *, target: str | None = None
) -> list[Finding]:
    wrong: list[str] = []
    fixes: list[str] = []
    unsure: list[str] = []
    severity: Severity | None = None
    if t.aet is not None and given.aet != t.aet:
        wrong.append(f"the AE title is {given.aet!r}, this SCU is {t.aet!r}")
        fixes.append(f"AE title {t.aet}")
    elif t.aet is None:
        unsure.append("the AE title (no --aet given)")
    if given.port != t.entry.port:
        wrong.append(f"the port is {given.port}, the PACS must dial {t.entry.port}")
        fixes.append(f"port {t.entry.port}")
    host_wrong, host_fix, host_sev = _host(given.host, t)
    if host_wrong is None and host_fix is None:
        unsure.append(f"the host {given.host} (no address measured to compare)")
    elif host_wrong:
        wrong.append(host_wrong)
        fixes.append(host_fix or "")
        severity = host_sev if len(wrong) == 1 else None
    out: list[Finding] = []
    detail: dict[str, Any] = {
        "given": {"aet": given.aet, "host": given.host, "port": given.port},
        "expected": t.entry.to_dict(),
        "not_compared": unsure,
    }
    if wrong:
        must = f"{t.aet or given.aet} @ {t.entry.host or '?'}:{t.entry.port}"
        out.append(
            make(
                "PACS_ENTRY_WRONG",
                severity=severity,
                target=target,
                detail={"wrong": wrong, **detail},
                aet=given.aet,
                host=given.host,
                port=given.port,
                wrong="; ".join(wrong),
                changes=", ".join(f for f in fixes if f),
                must=must,
            )
        )
    elif not unsure and not hairpin_rules(given, t):  # a hairpin entry is not "OK"
        out.append(
            make(
                "PACS_ENTRY_OK",
                target=target,
                detail=detail,
                aet=given.aet,
                host=given.host,
                port=given.port,
            )
        )
    out += hairpin_rules(given, t, target=target)
    return out


def _host(host: str, t: EntryTruth) -> tuple[str | None, str | None, Severity | None]:  # noqa: PLR0911 - one return per host mismatch, each its own fix
    """(what is wrong with the host, the fix, a severity other than fail) or (None, None, None)
    when it cannot be compared; ("", "", None) when it is right."""
    want = t.entry.host
    k = classify(host)
    if k is AddressClass.INVALID:  # a DNS name: compare what it resolves to (not done here)
        return None, None, None
    if k is AddressClass.LOOPBACK:
        return f"{host} is the PACS's own loopback (localhost)", f"host {want or '?'}", None
    if t.virtual_address and host == t.virtual_address:
        return (
            f"{host} is this container's/VM's address inside its host's NAT, which the PACS "
            "cannot reach",
            "host: the host's address (see NAT_VIRTUAL)",
            None,
        )
    if want is None:
        return None, None, None
    if host == want:
        return "", "", None
    if t.public and host == t.lan and t.behind_nat and t.pacs_outside is not False:
        if t.pacs_outside is None:
            return (
                f"{host} is this PC's LAN address: right only for a PACS on this LAN; a PACS "
                f"outside must dial the public address {t.public}",
                f"host {t.public} (for a PACS outside)",
                Severity.WARN,
            )
        return (
            f"{host} is this PC's LAN address, but the PACS is outside this network and must "
            f"dial the public address {t.public}",
            f"host {t.public}",
            None,
        )
    if t.public and host == t.public and t.pacs_outside is False:
        return "", "", None  # NAT_HAIRPIN says what is wrong with it
    if k is AddressClass.PRIVATE and t.lan and host != t.lan:
        also = "" if want == t.lan else f"; a PACS outside must dial {want}"
        return (
            f"{host} is not this PC's address ({t.lan}): the address changed (DHCP?) or the "
            f"entry names another PC{also}",
            f"host {want} (and a DHCP reservation for {t.lan} so it stays)",
            None,
        )
    if k is AddressClass.PUBLIC and t.public and want == t.public:
        return (
            f"{host} is not this network's public address ({t.public}): a dynamic address "
            "that changed, or another site's",
            f"host {t.public} (or a DNS name that follows it)",
            None,
        )
    return f"the host is {host}, the PACS must dial {want}", f"host {want}", None


def hairpin_rules(
    given: PacsEntryGiven, t: EntryTruth, *, target: str | None = None
) -> list[Finding]:
    if t.pacs_outside is not False or not t.public or given.host != t.public:
        return []
    measured = "not_measured" if t.hairpin is None else "hairpins" if t.hairpin else "no_hairpin"
    return [
        make(
            "NAT_HAIRPIN",
            variant=measured,
            target=target,
            detail={"hairpin": t.hairpin, "lan_address": t.lan, "public_address": t.public},
            public=t.public,
            aet=t.aet or given.aet,
            lan=t.lan or "?",
            port=t.entry.port,
        )
    ]


def check_rules(  # noqa: PLR0913 - keyword-only: every address the PACS entry is checked against
    given: PacsEntryGiven | None,
    entry: PacsEntry,
    *,
    aet: str | None,
    lan: str | None,
    public: str | None,
    behind_nat: bool | None,
    virtual_address: str | None,
) -> list[Finding]:
    """`check --pacs-entry`: the PACS's place is not known, so a LAN address is not wrong for
    certain (warn), and a hairpin cannot be told."""
    if given is None:
        return []
    return entry_rules(
        given,
        EntryTruth(
            entry=entry,
            aet=aet,
            lan=lan,
            public=public,
            behind_nat=behind_nat,
            pacs_outside=None,
            virtual_address=virtual_address,
        ),
    )


def rules(probes: Mapping[str, ProbeResult], cfg: CheckConfig) -> list[Finding]:
    """`check`'s rule: --pacs-entry against check's own entry (diagnosis/entry.py)."""
    if cfg.pacs_entry is None:
        return []
    from reverseprobe.diagnosis.entry import check_entry
    from reverseprobe.diagnosis.nat import public_view

    v = public_view(probes)
    vr = probes.get("virtual")
    virtual = vr.address if isinstance(vr, VirtualResult) and vr.verdict == "virtual-nat" else None
    return check_rules(
        cfg.pacs_entry,
        check_entry(probes, cfg),
        aet=cfg.aet,
        lan=v.lan_address,
        public=v.address,
        behind_nat=v.behind_nat,
        virtual_address=virtual,
    )


def move_rules(  # noqa: PLR0913 - keyword-only: the move's AET, hairpin and target
    given: PacsEntryGiven | None,
    entry: PacsEntry | None,
    addresses: Mapping[str, Any],
    *,
    aet: str,
    hairpin: bool | None = None,
    target: str | None = None,
) -> list[Finding]:
    """The checklist's per-PACS `entry` against that PACS's move-test run: the PACS's address
    is known there (`addresses`, move-test's AddressView as a dict), so a PACS inside the site
    must get the LAN address, and the public one is NAT_HAIRPIN."""
    if given is None or entry is None:
        return []
    from reverseprobe.model.move import AddressView, behind_nat, pacs_outside

    fields = {k: addresses.get(k) for k in AddressView.__dataclass_fields__}
    view = AddressView(**fields)
    lan = view.toward_pacs or view.lan
    return entry_rules(
        given,
        EntryTruth(
            entry=entry,
            aet=aet,
            lan=lan,
            public=view.public,
            behind_nat=behind_nat(view),
            pacs_outside=pacs_outside(view.pacs_ip) if view.pacs_ip else None,
            hairpin=hairpin,
        ),
        target=target,
    )
