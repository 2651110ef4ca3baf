"""C-GET (PS3.4 C.4.3): whether the PACS offers it (it needs no connection back to this PC,
so it is the way around NAT), and with --try-cget a real retrieval of the study over the same
association. Reads only; bounded by the caller's Deadline."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from reverseprobe.deadline import Deadline
from reverseprobe.dicom.qr import (
    QR_GET,
    AssocState,
    StatusWord,
    Target,
    abort_quietly,
    accepted,
    associate,
    close,
    counts,
    no_response_text,
    status_word,
    study_query,
)
from reverseprobe.model import Status
from reverseprobe.model.dicom import GetResult as GetResult

# --- C-GET ---------------------------------------------------------------------------------


def get_contexts(sop_classes: Sequence[str]) -> tuple[list[Any], list[Any]]:
    """The C-GET context plus storage contexts with the SCP role (PS3.4 C.4.3, PS3.7 D.3.3.4):
    the study's SOP classes where C-FIND told them, else pynetdicom's common storage list;
    at most 128 presentation contexts (PS3.8 9.3.2.2)."""
    from pynetdicom import StoragePresentationContexts
    from pynetdicom.presentation import build_context, build_role

    uids = list(sop_classes) or [str(cx.abstract_syntax) for cx in StoragePresentationContexts]
    uids = uids[:127]
    contexts = [build_context(QR_GET), *(build_context(u) for u in uids)]
    roles = [build_role(u, scp_role=True) for u in uids]
    return contexts, roles


def c_get(
    target: Target,
    study_uid: str | None,
    sop_classes: Sequence[str],
    deadline: Deadline,
    on_store: Callable[[Any], int],
) -> GetResult:
    """Whether the PACS accepts C-GET (no reverse connection needed); with a study, a real
    C-GET of it whose images go to `on_store` (returns the C-STORE status)."""
    from pynetdicom import evt

    contexts, roles = get_contexts(sop_classes)
    assoc, out = associate(
        target, contexts, deadline, ext_neg=roles, handlers=[(evt.EVT_C_STORE, on_store)]
    )
    if assoc is None and out.state is AssocState.CONTEXT_REJECTED:
        return GetResult(
            status=Status.OK,
            reason="the PACS refused the C-GET presentation context",
            supported=False,
            association=out.state,
        )
    if assoc is None:
        return GetResult(
            status=Status.FAIL, reason=f"association {out.state.value}", association=out.state
        )
    try:
        supported = accepted(assoc, QR_GET)
        if not supported or study_uid is None:
            return GetResult(
                status=Status.OK,
                supported=supported,
                association=AssocState.ACCEPTED,
                reason=None if supported else "the PACS refused the C-GET presentation context",
            )
        watchdog = threading.Timer(deadline.remaining() + 0.5, abort_quietly, args=(assoc,))
        watchdog.daemon = True
        watchdog.start()
        try:
            assoc.dimse_timeout = deadline.share(deadline.remaining())
            final: Any = None
            for st, _ in assoc.send_c_get(study_query(study_uid), QR_GET):
                if not st or "Status" not in st:
                    break
                if status_word(int(st.Status)) is not StatusWord.PENDING:
                    final = st
                    break
                assoc.dimse_timeout = deadline.share(deadline.remaining())
        finally:
            watchdog.cancel()
        if final is None:
            return GetResult(
                status=Status.FAIL,
                reason=f"C-GET: {no_response_text(assoc)}",
                supported=True,
                association=AssocState.ACCEPTED,
                tried=True,
            )
        code = int(final.Status)
        c = counts(final)
        return GetResult(
            status=Status.OK,
            supported=True,
            association=AssocState.ACCEPTED,
            tried=True,
            final_status=status_word(code),
            final_code=code,
            completed=c.get("completed"),
            failed=c.get("failed"),
            warning=c.get("warning"),
        )
    finally:
        close(assoc, deadline)
