"""Rules for the PACS side of move-test (pure): reaching it, being accepted by it, finding a
study on it; and the PACS entry (docs/reference.md "pacs_entry"), the address the PACS must dial."""

from __future__ import annotations

from reverseprobe.config import MoveTestConfig
from reverseprobe.diagnosis import entry
from reverseprobe.diagnosis.catalogue import make
from reverseprobe.model import Finding, PacsEntry, ProbeResult, Status
from reverseprobe.model.dicom import (
    AssocState,
    DicomResult,
    EchoProbeResult,
    FindResult,
    PacsTcp,
    Rejection,
)
from reverseprobe.model.move import AddressView, pacs_outside


def pacs_entry(cfg: MoveTestConfig, view: AddressView) -> PacsEntry:
    """move-test's entry: the PACS's position decides between the LAN and public address."""
    src = view.toward_pacs or view.lan
    return entry.pacs_entry(
        entry.EntryFacts(
            aet=cfg.aet,
            port=cfg.port,
            local_port=cfg.port,
            lan=src,
            public=view.public,
            public_checked=view.public is not None,
            public_note=view.public_note,
            public_on_pc=bool(src and src == view.public),
            consistent=view.public_consistent,
            pacs_outside=pacs_outside(view.pacs_ip),
            suffix=scu_settings(cfg),
        )
    )


def scu_settings(cfg: MoveTestConfig) -> str:
    """Cause 4 of docs/reference.md: what the SCU's own configuration must say."""
    return (
        f"Your SCU's own settings: Move Destination exactly {cfg.aet!r} (the title in the PACS "
        f"entry), its Storage SCP listening on port {cfg.port} on all interfaces, and nothing "
        f"else listening on port {cfg.port}."
    )


def pacs_name(cfg: MoveTestConfig) -> str:
    return f"{cfg.pacs_aet} at {cfg.pacs_host}:{cfg.pacs_port}"


def register(cfg: MoveTestConfig, entry: PacsEntry) -> str:
    host = entry.host or "this PC's address"
    return f"AE title {cfg.aet!r}, address {host}, port {cfg.port}"


# --- echo / association -----------------------------------------------------------------


def echo_rules(echo: ProbeResult, cfg: MoveTestConfig, entry: PacsEntry) -> list[Finding]:
    assert isinstance(echo, EchoProbeResult)
    where = pacs_name(cfg)
    if echo.tcp == PacsTcp.UNRESOLVED:
        return [
            make(
                "PACS_UNREACHABLE",
                variant="unresolved",
                detail={"tcp": echo.tcp},
                host=cfg.pacs_host,
                reason=echo.detail,
            )
        ]
    if echo.tcp in (PacsTcp.REFUSED, PacsTcp.TIMEOUT, PacsTcp.UNREACHABLE):
        return [
            make(
                "PACS_UNREACHABLE",
                variant=PacsTcp(echo.tcp).value,
                detail={"tcp": echo.tcp},
                pacs=where,
                tcp=echo.tcp,
                reason=echo.detail,
                host=cfg.pacs_host,
                port=cfg.pacs_port,
            )
        ]
    if echo.result in (DicomResult.NOT_DICOM, DicomResult.NO_ANSWER):
        return [
            make(
                "PACS_UNREACHABLE",
                variant="not_dicom",
                detail={"result": echo.result},
                host=cfg.pacs_host,
                port=cfg.pacs_port,
                reason=echo.detail,
            )
        ]
    if echo.result == DicomResult.REJECTED and echo.reject is not None:
        return [rejected(echo.reject, cfg, entry, "C-ECHO")]
    if echo.result == DicomResult.ABORTED:
        return [aborted(cfg, entry, "the association for C-ECHO")]
    return []


def rejected(r: Rejection, cfg: MoveTestConfig, entry: PacsEntry, what: str) -> Finding:
    """A-ASSOCIATE-RJ decoded (PS3.8 9.3.4): result, source, reason -> what to change."""
    if r.source == 1 and r.reason == 7:
        variant = "called_aet"
    elif r.source == 1 and r.reason == 3:
        variant = "calling_aet"
    elif r.source == 1:
        variant = "caller"
    else:
        variant = "transient" if r.result == 2 else "other"
    return make(
        "PACS_REJECTED_ASSOCIATION",
        variant=variant,
        detail={"reject": {"result": r.result, "source": r.source, "reason": r.reason}},
        pacs=pacs_name(cfg),
        what=what,
        result_str=r.result_str,
        source_str=r.source_str,
        reason_str=r.reason_str,
        result=r.result,
        source=r.source,
        reason=r.reason,
        pacs_aet=cfg.pacs_aet,
        register=register(cfg, entry),
    )


def aborted(cfg: MoveTestConfig, entry: PacsEntry, what: str) -> Finding:
    return make(
        "PACS_ABORTED",
        variant="association",
        pacs=pacs_name(cfg),
        what=what,
        aet=cfg.aet,
        register=register(cfg, entry),
    )


def protocol_error(cfg: MoveTestConfig, what: str, reason: str | None) -> Finding:
    """The PACS sent what no DICOM peer sends (PS3.8 9.2, Evt19): name it, do not guess."""
    return make(
        "PACS_PROTOCOL_ERROR",
        pacs=pacs_name(cfg),
        what=what,
        reason=reason or "an invalid PDU or DIMSE message",
    )


# --- find -----------------------------------------------------------------------------------


def find_rules(find: ProbeResult, cfg: MoveTestConfig, entry: PacsEntry) -> list[Finding]:  # noqa: PLR0911 - one return per C-FIND outcome (PS3.4 C.4.1), each a distinct finding
    assert isinstance(find, FindResult)
    if find.association is AssocState.REJECTED and find.reject is not None:
        return [rejected(find.reject, cfg, entry, "C-FIND")]
    if find.association is AssocState.ABORTED:
        return [aborted(cfg, entry, "C-FIND")]
    if find.association is AssocState.CONTEXT_REJECTED:
        return [make("MOVE_NOTHING_TO_MOVE", variant="find_refused", pacs=pacs_name(cfg))]
    if (
        find.association is AssocState.ACCEPTED
        and find.final_code is None
        and find.status is not Status.OK
    ):
        # Associated, asked, and no final C-FIND response: a failure of the find, not a warning.
        if "garbage" in (find.reason or ""):
            return [protocol_error(cfg, "C-FIND", find.reason)]
        return [
            make(
                "PACS_ABORTED",
                variant="no_final_find",
                pacs=pacs_name(cfg),
                reason=find.reason,
                aet=cfg.aet,
            )
        ]
    if find.status is not Status.OK:
        return [
            make(
                "MOVE_NOTHING_TO_MOVE",
                variant="find_failed",
                pacs=pacs_name(cfg),
                reason=find.reason,
            )
        ]
    if find.study_uid is None:
        return [
            make(
                "MOVE_NOTHING_TO_MOVE",
                variant="study_missing" if find.requested_study else "no_study",
                study=find.requested_study,
                pacs=pacs_name(cfg),
            )
        ]
    return []
