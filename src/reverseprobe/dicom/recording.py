"""What our Storage SCP records of each inbound association (the PACS's C-STORE
sub-operations, PS3.4 C.4.2.3.1): AE titles, contexts and their answers (PS3.8 9.3.3.2),
stores, statuses and times, frozen into model.dicom.InboundAssociation for the report."""

from __future__ import annotations

import contextlib
import errno
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reverseprobe.dicom.scp import unmapped
from reverseprobe.model.dicom import ContextRecord, InboundAssociation

VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"
# Services a Storage SCP must not claim: the rest (storage, private, unknown) is accepted.
_NOT_STORAGE_PREFIXES = ("1.2.840.10008.5.1.4.1.2.", "1.2.840.10008.5.1.4.31", "1.2.840.10008.3.")
MAX_CONTEXTS = 128  # presentation contexts recorded per association (PS3.8 allows 128)
# PS3.8 9.3.3.2 result/reason of a presentation context in the A-ASSOCIATE-AC
CONTEXT_RESULT = {
    0: "accepted",
    1: "user-rejection",
    2: "no-reason",
    3: "abstract-syntax-not-supported",
    4: "transfer-syntaxes-not-supported",
}


@dataclass(frozen=True)
class ReceiverStats:
    port: int
    listening: bool
    received: int = 0  # C-STOREs answered with success
    failed: int = 0  # C-STOREs we could not keep (save errors)
    received_after_final: int = 0
    bytes: int = 0
    connections: int = 0
    associations: tuple[InboundAssociation, ...] = ()
    untracked_associations: int = 0
    first_store_t: float | None = None
    last_store_t: float | None = None
    saved_to: str | None = None


class InboundState:
    """Mutable state of one inbound association (guarded by the receiver's lock)."""

    __slots__ = (
        "accepted",
        "bytes",
        "called",
        "calling",
        "contexts",
        "ended",
        "ended_t",
        "first_store_t",
        "last_store_t",
        "max_pdu",
        "number",
        "originator",
        "peer",
        "peer_port",
        "rejected",
        "roles",
        "statuses",
        "store_failures",
        "stores",
        "t",
    )  # fmt: skip

    def __init__(self, number: int, peer: str, peer_port: int, t: float) -> None:
        self.number, self.peer, self.peer_port, self.t = number, peer, peer_port, t
        self.called: str | None = None
        self.calling: str | None = None
        self.accepted = False
        self.stores = self.store_failures = self.bytes = 0
        self.first_store_t: float | None = None
        self.last_store_t: float | None = None
        self.ended: str | None = None
        self.ended_t: float | None = None
        self.rejected: tuple[str, ...] = ()
        self.originator: str | None = None
        self.contexts: tuple[ContextRecord, ...] = ()
        self.max_pdu: int | None = None
        self.statuses: list[int] = []
        self.roles: dict[str, tuple[bool | None, bool | None]] = {}

    def freeze(self) -> InboundAssociation:
        return InboundAssociation(
            number=self.number,
            peer=self.peer,
            peer_port=self.peer_port,
            connected_t=round(self.t, 4),
            called_aet=self.called,
            calling_aet=self.calling,
            accepted=self.accepted,
            stores=self.stores,
            store_failures=self.store_failures,
            bytes=self.bytes,
            first_store_t=rounded(self.first_store_t),
            last_store_t=rounded(self.last_store_t),
            ended=self.ended,
            ended_t=rounded(self.ended_t),
            rejected_sop_classes=self.rejected,
            move_originator_aet=self.originator,
            contexts=self.contexts,
            max_pdu=self.max_pdu,
            store_statuses=tuple(self.statuses),
        )


def context_records(assoc: Any) -> tuple[ContextRecord, ...]:
    """Accepted and rejected contexts of an established association, by context ID."""
    out: list[ContextRecord] = []
    proposed: dict[int, tuple[str, ...]] = {}
    with contextlib.suppress(Exception):
        prim = assoc.requestor.primitive
        for cx in prim.presentation_context_definition_list or []:
            proposed[int(cx.context_id)] = tuple(str(t) for t in cx.transfer_syntax)
    for cx in [*getattr(assoc, "accepted_contexts", []), *getattr(assoc, "rejected_contexts", [])]:
        with contextlib.suppress(Exception):
            result = int(cx.result) if cx.result is not None else 2
            ts = cx.transfer_syntax
            out.append(
                ContextRecord(
                    context_id=int(cx.context_id),
                    abstract_syntax=str(cx.abstract_syntax),
                    transfer_syntaxes=proposed.get(int(cx.context_id), tuple(str(t) for t in ts)),
                    result=CONTEXT_RESULT.get(result, str(result)),
                    accepted_transfer_syntax=str(ts[0]) if result == 0 and ts else None,
                )
            )
    out.sort(key=lambda r: r.context_id)
    return tuple(out[:MAX_CONTEXTS])


def event_address(event: Any) -> tuple[str, int]:
    addr = getattr(event, "address", None)
    try:
        return unmapped(str(addr[0])), int(addr[1])  # type: ignore[index]
    except (TypeError, IndexError, ValueError):
        return "?", 0


def aet(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    s = str(value).strip()
    return s or None


def dataset_size(req: Any) -> int:
    ds = getattr(req, "DataSet", None)
    if ds is None:
        return 0
    try:
        return int(ds.getbuffer().nbytes)
    except (AttributeError, TypeError, ValueError):
        return 0


def rounded(t: float | None) -> float | None:
    return None if t is None else round(t, 4)


@dataclass(frozen=True)
class Proposal:
    """What an A-ASSOCIATE-RQ asks for (PS3.8 9.3.2): the AE titles, each abstract syntax with
    its transfer syntaxes in order, the SCP/SCU role selections (PS3.7 D.3.3.4), the maximum PDU."""

    called: str | None
    calling: str | None
    proposed: dict[str, list[str]]
    roles: dict[str, tuple[bool | None, bool | None]]
    max_pdu: int | None

    def detail(self, refused: tuple[str, ...]) -> dict[str, Any]:
        """The timeline's ASSOCIATE_RQ entry: bounded (8 contexts, 16 refused classes)."""
        detail: dict[str, Any] = {"called_aet": self.called, "calling_aet": self.calling}
        if self.max_pdu is not None:
            detail["max_pdu"] = self.max_pdu
        detail["proposed"] = [{"sop_class": u, "transfer_syntaxes": self.proposed[u][:8]}
                              for u in list(self.proposed)[:8]]  # fmt: skip
        if refused:
            detail["unsupported_sop_classes"] = list(refused[:16])
        return detail


def read_proposal(prim: Any) -> Proposal:
    """The A-ASSOCIATE-RQ primitive as pynetdicom parsed it; what a peer left out is None."""
    proposed: dict[str, list[str]] = {}
    for cx in getattr(prim, "presentation_context_definition_list", None) or []:
        ts = proposed.setdefault(str(cx.abstract_syntax), [])
        ts.extend(str(t) for t in cx.transfer_syntax if str(t) not in ts)
    roles: dict[str, tuple[bool | None, bool | None]] = {}
    with contextlib.suppress(Exception):
        for item in getattr(prim, "user_information", None) or []:
            if type(item).__name__ == "SCP_SCU_RoleSelectionNegotiation":
                roles[str(item.sop_class_uid)] = (item.scu_role, item.scp_role)
    max_pdu = None
    with contextlib.suppress(Exception):
        max_pdu = int(prim.maximum_length_received)
    return Proposal(
        called=aet(getattr(prim, "called_ae_title", None)),
        calling=aet(getattr(prim, "calling_ae_title", None)),
        proposed=proposed,
        roles=roles,
        max_pdu=max_pdu,
    )


def save_new_file(directory: Path, stem: str, data: bytes) -> None:
    """--save: `stem`.dcm, or the first free `stem`-N.dcm; never overwrites a file."""
    for i in range(100):
        name = f"{stem}.dcm" if i == 0 else f"{stem}-{i}.dcm"
        try:
            with open(directory / name, "xb") as f:
                f.write(data)
            return
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"too many files named {stem}*.dcm")


def storage_like(uid: str) -> bool:
    """Everything a PACS may send in a C-STORE: every storage class, private and unknown ones
    included; only Q/R, worklist and the like are left out (a move never proposes them)."""
    return uid == VERIFICATION_SOP_CLASS or not uid.startswith(_NOT_STORAGE_PREFIXES)
