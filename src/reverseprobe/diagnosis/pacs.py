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
                f"The PACS host name {cfg.pacs_host!r} does not resolve: {echo.detail}.",
                "Check the spelling and this PC's DNS (or VPN), or give the PACS's IP address "
                "in --pacs.",
                tcp=echo.tcp,
            )
        ]
    if echo.tcp in (PacsTcp.REFUSED, PacsTcp.TIMEOUT, PacsTcp.UNREACHABLE):
        fix = {
            "refused": f"Nothing listens on {cfg.pacs_host}:{cfg.pacs_port}: check the PACS's "
            f"DICOM port with its administrator (104 and 11112 are usual) and that it runs.",
            "timeout": f"The connection to {cfg.pacs_host}:{cfg.pacs_port} timed out: a firewall "
            f"drops it, or the address is wrong, or the VPN to the PACS is down.",
            "unreachable": f"No route to {cfg.pacs_host}: check the address, this PC's network "
            f"and any VPN to the PACS.",
        }[echo.tcp]
        return [
            make(
                "PACS_UNREACHABLE",
                f"No TCP connection to the PACS {where}: {echo.tcp} ({echo.detail}).",
                fix,
                tcp=echo.tcp,
            )
        ]
    if echo.result in (DicomResult.NOT_DICOM, DicomResult.NO_ANSWER):
        return [
            make(
                "PACS_UNREACHABLE",
                f"{cfg.pacs_host}:{cfg.pacs_port} accepts TCP but does not answer DICOM: "
                f"{echo.detail}.",
                f"Check the PACS's DICOM port with its administrator; {cfg.pacs_port} may be "
                f"another service (HTTP, TLS-only DICOM).",
                result=echo.result,
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
        fix = (
            f"Use the PACS's exact AE title (case matters): {cfg.pacs_aet!r} is not it. "
            f"dcmqrscp says the same when the *calling* AE is unknown: ask the administrator to "
            f"register {register(cfg, entry)}."
        )
    elif r.source == 1 and r.reason == 3:
        fix = f"Ask the PACS administrator to register {register(cfg, entry)}."
    elif r.source == 1:
        fix = (
            f"The PACS refused this caller: ask its administrator to allow {register(cfg, entry)} "
            f"(many PACS check the calling AE title and the address it comes from)."
        )
    elif r.result == 2:
        fix = "The PACS is busy or temporarily refusing (transient): try again later."
    else:
        fix = "Ask the PACS administrator what the PACS logged for this association."
    return make(
        "PACS_REJECTED_ASSOCIATION",
        f"The PACS {pacs_name(cfg)} rejected the association ({what}): {r.result_str}, "
        f"{r.source_str}, {r.reason_str} "
        f"(result {r.result}, source {r.source}, reason {r.reason}).",
        fix,
        reject={"result": r.result, "source": r.source, "reason": r.reason},
    )


def aborted(cfg: MoveTestConfig, entry: PacsEntry, what: str) -> Finding:
    return make(
        "PACS_ABORTED",
        f"The PACS {pacs_name(cfg)} accepted the association but aborted {what} (A-ABORT, no "
        f"status): it does not know the calling AE title {cfg.aet!r}, or knows it with another "
        f"address than the one this PC's connections come from.",
        f"Ask the PACS administrator to register {register(cfg, entry)}; the address must be "
        f"the one the PACS sees (behind NAT: the public address) and the title must match "
        f"exactly.",
    )


def protocol_error(cfg: MoveTestConfig, what: str, reason: str | None) -> Finding:
    """The PACS sent what no DICOM peer sends (PS3.8 9.2, Evt19): name it, do not guess."""
    return make(
        "PACS_PROTOCOL_ERROR",
        f"The PACS {pacs_name(cfg)} answered {what} with garbage, not DICOM: "
        f"{reason or 'an invalid PDU or DIMSE message'}.",
        "Report it to the PACS vendor with a network capture of the exchange; confirm with "
        "another Q/R client (dcmtk movescu) that it is the PACS and not the path.",
    )


# --- find -----------------------------------------------------------------------------------


def find_rules(find: ProbeResult, cfg: MoveTestConfig, entry: PacsEntry) -> list[Finding]:  # noqa: PLR0911 - one return per C-FIND outcome (PS3.4 C.4.1), each a distinct finding
    assert isinstance(find, FindResult)
    if find.association is AssocState.REJECTED and find.reject is not None:
        return [rejected(find.reject, cfg, entry, "C-FIND")]
    if find.association is AssocState.ABORTED:
        return [aborted(cfg, entry, "C-FIND")]
    if find.association is AssocState.CONTEXT_REJECTED:
        return [
            make(
                "MOVE_NOTHING_TO_MOVE",
                f"The PACS {pacs_name(cfg)} refused Study Root C-FIND, so no study could be "
                f"chosen.",
                "Name a study that is on the PACS with --study UID.",
            )
        ]
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
                f"The PACS {pacs_name(cfg)} accepted the association but gave no final C-FIND "
                f"response: {find.reason}.",
                "Ask the PACS administrator why the query does not complete (its log for this "
                f"caller, {cfg.aet!r}); a PACS that answers C-ECHO but not C-FIND often does not "
                "know the calling AE title.",
            )
        ]
    if find.status is not Status.OK:
        return [
            make(
                "MOVE_NOTHING_TO_MOVE",
                f"C-FIND on the PACS {pacs_name(cfg)} failed: {find.reason}.",
                "Name a study that is on the PACS with --study UID, or ask the administrator "
                "why the query fails.",
            )
        ]
    if find.study_uid is None:
        if find.requested_study:
            summary = f"Study {find.requested_study} is not on the PACS (C-FIND found no match)."
        else:
            summary = f"The PACS {pacs_name(cfg)} returned no study for C-FIND: nothing to move."
        return [
            make(
                "MOVE_NOTHING_TO_MOVE",
                summary,
                "Store a small test study on the PACS (or ask for one), or name one with "
                "--study UID; until then the C-MOVE cannot be tested.",
            )
        ]
    return []
