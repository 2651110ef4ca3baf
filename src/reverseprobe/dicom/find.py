"""Study-level C-FIND (PS3.4 C.6.2): which study move-test will move, and how many images it
holds (NumberOfStudyRelatedInstances, or counted image by image where the PACS gives none).
Reads only; at most MAX_STUDIES matches, then C-CANCEL; bounded by the caller's Deadline."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from reverseprobe.deadline import Deadline
from reverseprobe.dicom.qr import (
    NO_RESPONSE_TEXT,
    QR_FIND,
    UID_RE,
    AssocOutcome,
    AssocState,
    NoResponse,
    StatusWord,
    Target,
    abort_quietly,
    accepted,
    associate,
    close,
    int_or_none,
    no_response,
    status_meaning,
    status_word,
    study_query,
)
from reverseprobe.model import Status
from reverseprobe.model.dicom import FindResult as FindResult

MAX_STUDIES = 200  # C-FIND matches read before C-CANCEL
COUNT_CAP = 5000  # image-level matches counted per study
COUNT_CANDIDATES = 5  # studies counted image by image when the PACS gives no counts


# --- C-FIND --------------------------------------------------------------------------------


def find_study(target: Target, deadline: Deadline, *, study: str | None = None) -> FindResult:
    """Study-level C-FIND (PS3.4 C.6.2); picks the smallest study (or `study`) to move."""
    assoc, out = associate(target, [QR_FIND], deadline)
    if assoc is None:
        return _find_fail(out, study)
    try:
        if not accepted(assoc, QR_FIND):
            return _find_fail(
                AssocOutcome(AssocState.CONTEXT_REJECTED, detail="Study Root C-FIND refused"),
                study,
            )
        q = study_query(study or "")
        q.NumberOfStudyRelatedInstances = ""
        q.StudyDate = ""
        matches: list[tuple[str, int | None]] = []
        code, truncated, why = _run_find(
            assoc, q, deadline, matches, cap=MAX_STUDIES, parse=_study_match
        )
        if code is None:
            aborted = why in (NoResponse.ABORTED, NoResponse.CLOSED)
            return FindResult(
                status=Status.FAIL,
                reason=f"C-FIND: {NO_RESPONSE_TEXT[why or NoResponse.TIMEOUT]}",
                association=AssocState.ABORTED if aborted else AssocState.ACCEPTED,
                requested_study=study,
            )
        if status_word(code) not in (StatusWord.SUCCESS, StatusWord.CANCEL) and not matches:
            return FindResult(
                status=Status.FAIL,
                reason=f"C-FIND failed: 0x{code:04X} ({status_meaning(code)})",
                association=AssocState.ACCEPTED,
                final_code=code,
                requested_study=study,
            )
        chosen, count, source, classes = _choose(assoc, deadline, matches)
        return FindResult(
            status=Status.OK,
            association=AssocState.ACCEPTED,
            final_code=code,
            studies=len(matches),
            truncated=truncated,
            requested_study=study,
            study_uid=chosen,
            instances=count,
            instances_from=source,
            sop_classes=classes,
        )
    finally:
        close(assoc, deadline)


def _study_match(ident: Any) -> tuple[str, int | None] | None:
    uid = str(getattr(ident, "StudyInstanceUID", "") or "").strip()
    if not UID_RE.match(uid) or len(uid) > 64:
        return None
    return uid, int_or_none(ident, "NumberOfStudyRelatedInstances")


def _run_find(  # noqa: PLR0913 - keyword-only cap and parser of one bounded C-FIND
    assoc: Any,
    query: Any,
    deadline: Deadline,
    out: list[Any],
    *,
    cap: int,
    parse: Callable[[Any], Any],
) -> tuple[int | None, bool, NoResponse | None]:
    """Read matches into `out` (at most `cap`, then C-CANCEL); (final code, truncated, why)."""
    assoc.dimse_timeout = deadline.share(deadline.remaining())
    truncated = False
    cx_id = next(
        cx.context_id for cx in assoc.accepted_contexts if str(cx.abstract_syntax) == QR_FIND
    )
    for st, ident in assoc.send_c_find(query, QR_FIND):
        if not st or "Status" not in st:
            return None, truncated, no_response(assoc)
        try:
            code = int(st.Status)
        except (TypeError, ValueError):  # a Status that is no number: garbage, not DICOM
            abort_quietly(assoc)
            return None, truncated, NoResponse.GARBAGE
        if status_word(code) is not StatusWord.PENDING:
            return code, truncated, None
        if deadline.expired:  # a PACS that keeps sending matches (and ignores C-CANCEL)
            abort_quietly(assoc)
            return None, truncated, NoResponse.TIMEOUT
        item = parse(ident) if ident is not None else None
        if item is not None and len(out) < cap:
            out.append(item)
        elif item is not None and not truncated:
            truncated = True
            with contextlib.suppress(Exception):
                assoc.send_c_cancel(1, cx_id)  # PS3.7 9.3.2.3; the PACS answers Cancel
        assoc.dimse_timeout = deadline.share(deadline.remaining())
    return None, truncated, no_response(assoc)


def _choose(
    assoc: Any, deadline: Deadline, matches: list[tuple[str, int | None]]
) -> tuple[str | None, int | None, str | None, tuple[str, ...]]:
    """The smallest non-empty study; counted image by image when the PACS gives no counts."""
    if not matches:
        return None, None, None, ()
    counted = [(uid, n) for uid, n in matches if n]
    if counted:
        uid, n = min(counted, key=lambda m: m[1] or 0)
        return uid, n, "NumberOfStudyRelatedInstances", ()
    best: tuple[str, int, tuple[str, ...]] | None = None
    for uid, _ in matches[:COUNT_CANDIDATES]:
        if deadline.remaining() < 1.0:
            break
        found, classes = count_instances(assoc, uid, deadline.child(deadline.remaining() / 2))
        if found and (best is None or found < best[1]):
            best = (uid, found, classes)
    if best is None:
        return matches[0][0], None, None, ()
    return best[0], best[1], "image-level C-FIND", best[2]


def count_instances(
    assoc: Any, study_uid: str, deadline: Deadline
) -> tuple[int | None, tuple[str, ...]]:
    """IMAGE-level C-FIND of one study: (instances, SOP classes seen); None on failure."""
    q = study_query(study_uid, "IMAGE")
    q.SeriesInstanceUID = ""
    q.SOPInstanceUID = ""
    q.SOPClassUID = ""
    rows: list[str] = []

    def parse(ident: Any) -> str:
        return str(getattr(ident, "SOPClassUID", "") or "")

    code, _, _ = _run_find(assoc, q, deadline, rows, cap=COUNT_CAP, parse=parse)
    if code is None:
        return None, ()
    classes = tuple(sorted({c for c in rows if UID_RE.match(c)}))[:64]
    return len(rows), classes


def _find_fail(out: AssocOutcome, study: str | None) -> FindResult:
    return FindResult(
        status=Status.FAIL,
        reason=f"association {out.state.value}: {out.detail}" if out.detail else out.state.value,
        association=out.state,
        reject=out.reject,
        requested_study=study,
    )
