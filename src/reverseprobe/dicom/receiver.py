"""Our own Storage SCP for move-test, and the timeline of everything it and the client saw.

A C-MOVE's images come over a NEW association that the PACS opens to the Move Destination's
address (PS3.4 C.4.2.3.1: the C-MOVE SCP "performs C-STORE sub-operations" as an SCU). Status
codes cannot tell why a move failed; what this listener saw can: whether a connection came,
from which address, which AE titles it called with (PS3.8 9.3.2 A-ASSOCIATE-RQ), and when each
C-STORE arrived relative to the final C-MOVE response. Images are discarded unless a save
directory is given; per-image state is not kept, so memory stays flat however many arrive.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import threading
import time
from pathlib import Path
from typing import Any

from reverseprobe.dicom.guard import Cut, Guard, Limits
from reverseprobe.dicom.guarded_server import ServerLimits, start_guarded_server
from reverseprobe.dicom.qr import UID_RE
from reverseprobe.dicom.recording import (
    VERIFICATION_SOP_CLASS,
    InboundState,
    ReceiverStats,
    aet,
    context_records,
    dataset_size,
    event_address,
    read_proposal,
    rounded,
    save_new_file,
    storage_like,
)
from reverseprobe.dicom.scp import dual_stack_host
from reverseprobe.dicom.timeline import EventKind, Timeline
from reverseprobe.model.dicom import DicomStatus

STORE_EVENTS_PER_ASSOCIATION = 5  # C-STORE entries per association in the timeline
MAX_TRACKED_ASSOCIATIONS = 64  # inbound associations described one by one
# What peers may cost (guard.py): anyone who reaches the port can connect.
MAX_CONNECTIONS = 32  # open at once, all peers
MAX_PER_SOURCE = 16  # open at once from one address (a PACS may send in parallel)
MAX_MESSAGE = 512 << 20  # one C-STORE data set, held in memory by pynetdicom until complete
PDU_TIMEOUT_S = 10.0  # a whole PDU, from its first byte
CUT_EVENTS = 20  # cut-off entries in the timeline
MAX_STATUSES = 8  # distinct C-STORE statuses recorded per association


class PortBusyError(OSError):
    """The receive port is taken (EADDRINUSE) or may not be bound (EACCES)."""


class Receiver:
    """A pynetdicom Storage SCP on `port`, all IPv4 interfaces, that records and discards.

    It accepts any called AE title (a wrong one is a finding, not a reason to lose the images)
    and, per association, every storage SOP class and every transfer syntax the peer proposes,
    compressed, private and unknown ones included (PS3.8 9.3.2.2): a diagnostic receiver must
    never be why images fail. Nothing is decoded; --save writes the bytes as received.
    """

    def __init__(  # noqa: PLR0913 - keyword-only receiver limits (issue 16) and identity
        self,
        aet: str,
        port: int,
        timeline: Timeline,
        *,
        host: str | None = None,
        save_dir: Path | None = None,
        acse_timeout: float = 10.0,
        network_timeout: float = 60.0,
        ssl_context: Any = None,
    ) -> None:
        self.aet, self.port, self.host = aet, port, host or dual_stack_host()  # issue 15
        # DICOM over TLS (PS3.15 B.1): the guard's deadline and byte budget stay on the
        # TLS socket; a plain A-ASSOCIATE-RQ is a cut of kind "tls" (guard.accept_tls)
        self._ssl_context = ssl_context
        self.timeline = timeline
        self.save_dir = save_dir
        self._acse_timeout = acse_timeout
        self._network_timeout = network_timeout
        self._lock = threading.Lock()
        self._conns: dict[int, InboundState] = {}  # id(Association) -> state, open ones only
        self._done: list[InboundState] = []
        self._numbers = 0
        self._untracked = 0
        self._received = self._failed = self._after_final = self._bytes = 0
        self._first_store_t: float | None = None
        self._last_store_t: float | None = None
        self._final_t: float | None = None
        self._last_activity = 0.0
        self._server: Any = None
        self._ae: Any = None
        self._saved = 0
        self._cuts = 0
        self.deadline: float | None = None  # time.monotonic(): no association outlives it

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Listen now; PortBusyError when the port is taken or not ours to bind."""
        from pynetdicom import AE, _config, evt
        from pynetdicom.presentation import build_context

        # A C-STORE of a private or unknown SOP class goes to the Storage service, not to
        # "no service class implemented" (pynetdicom's documented switch for such SCPs).
        _config.UNRESTRICTED_STORAGE_SERVICE = True
        ae = AE(ae_title=self.aet)
        ae.acse_timeout = self._acse_timeout
        ae.dimse_timeout = self._acse_timeout
        ae.network_timeout = self._network_timeout
        ae.maximum_associations = 32
        ae.require_called_aet = False
        ae.require_calling_aet = []
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, self._on_open),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_RELEASED, self._on_ended("released")),
            (evt.EVT_ABORTED, self._on_ended("aborted")),
            (evt.EVT_CONN_CLOSE, self._on_ended("closed")),
        ]
        limits = ServerLimits(
            per_association=Limits(
                pdu_timeout=min(PDU_TIMEOUT_S, self._network_timeout),
                # move-test gives network_timeout = its time left: no association outlives it
                deadline=self.deadline or time.monotonic() + self._network_timeout,
                max_message=MAX_MESSAGE,
            ),
            max_connections=MAX_CONNECTIONS,
            max_per_source=MAX_PER_SOURCE,
        )
        try:
            self._server = start_guarded_server(
                ae,
                (self.host, self.port),
                limits=limits,
                evt_handlers=handlers,
                contexts=[build_context(VERIFICATION_SOP_CLASS)],
                on_cut=self._on_cut,
                ssl_context=self._ssl_context,
            )
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortBusyError(exc.errno, f"cannot listen on port {self.port}: {exc}") from exc
            raise
        self._ae = ae
        self._last_activity = self.timeline.now()
        tls: dict[str, Any] = {"tls": True} if self._ssl_context is not None else {}
        self.timeline.add(
            EventKind.LISTENING, port=self.port, address=self.host, aet=self.aet, detail=tls
        )

    @property
    def tls(self) -> bool:
        """Whether this receiver speaks DICOM over TLS (PS3.15 B.1)."""
        return self._ssl_context is not None

    def stop(self) -> None:
        """Stop listening and abort what is still connected (Ctrl-C lands here too)."""
        server, self._server = self._server, None
        if server is None:
            return
        # First end every connection (the shutdown wakes a reader blocked in recv(), whatever
        # the peer does), then stop accepting: pynetdicom's abort alone waits for that reader.
        with contextlib.suppress(Exception):
            server.stop_all("the receiver stopped")
        with contextlib.suppress(Exception):
            server.shutdown()
        for assoc in list(getattr(server, "active_associations", [])):
            with contextlib.suppress(Exception):
                assoc.acse_timeout = 1.0  # the ARTIM timer of the abort (PS3.8 9.1.5)
                assoc.abort()
        self.timeline.add(EventKind.STOPPED, port=self.port)

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the move loop asks ------------------------------------------------------------

    def mark_final(self, t: float) -> None:
        """The final C-MOVE response arrived at `t`: later C-STOREs count as late."""
        with self._lock:
            self._final_t = t

    @property
    def open_associations(self) -> int:
        with self._lock:
            return sum(1 for c in self._conns.values() if c.ended is None)

    @property
    def received(self) -> int:
        with self._lock:
            return self._received

    @property
    def last_activity(self) -> float:
        with self._lock:
            return self._last_activity

    def stats(self) -> ReceiverStats:
        with self._lock:
            conns = sorted([*self._done, *self._conns.values()], key=lambda c: c.number)
            return ReceiverStats(
                port=self.port,
                listening=self._ae is not None,
                received=self._received,
                failed=self._failed,
                received_after_final=self._after_final,
                bytes=self._bytes,
                connections=self._numbers,
                associations=tuple(c.freeze() for c in conns),
                untracked_associations=self._untracked,
                first_store_t=rounded(self._first_store_t),
                last_store_t=rounded(self._last_store_t),
                saved_to=str(self.save_dir) if self.save_dir else None,
            )

    # --- pynetdicom event handlers (run in association threads) -----------------------------

    def _on_cut(self, guard: Guard | None, peer: tuple[str, int], cut: Cut) -> None:
        """Our guard ended (or refused) a peer's connection: say so in the timeline."""
        if cut.kind == "stopped":
            return
        with self._lock:
            c = self._conns.get(id(guard.assoc)) if guard is not None else None
            number = c.number if c else None
            self._cuts += 1
            nth = self._cuts
        if nth <= CUT_EVENTS:
            self.timeline.add(
                EventKind.CUT_OFF,
                peer=f"{peer[0]}:{peer[1]}",
                association=number,
                why=cut.kind,
                detail={"reason": cut.detail},
            )

    def _conn(self, event: Any) -> InboundState | None:
        return self._conns.get(id(event.assoc))

    def _on_open(self, event: Any) -> None:
        peer, peer_port = event_address(event)
        t = self.timeline.now()
        with self._lock:
            self._numbers += 1
            self._last_activity = t
            if len(self._conns) + len(self._done) < MAX_TRACKED_ASSOCIATIONS:
                self._conns[id(event.assoc)] = InboundState(self._numbers, peer, peer_port, t)
                number: int | None = self._numbers
            else:
                self._untracked += 1
                number = None
        self.timeline.add(EventKind.CONNECTION, peer=f"{peer}:{peer_port}", association=number, t=t)

    def _on_requested(self, event: Any) -> None:
        """A-ASSOCIATE-RQ: note the AE titles, the maximum PDU and the role proposals; support
        every storage-like abstract syntax with every transfer syntax proposed for it."""
        from pynetdicom.presentation import build_context

        assoc = event.assoc
        rq = read_proposal(assoc.requestor.primitive)
        proposed = rq.proposed
        keep = [u for u in proposed if storage_like(u)]
        refused = tuple(u for u in proposed if u not in keep)
        with contextlib.suppress(Exception):
            assoc.acceptor.supported_contexts = [
                build_context(u, [t for t in proposed[u] if UID_RE.match(t)] or proposed[u])
                for u in keep
            ] or [build_context(VERIFICATION_SOP_CLASS)]
        with self._lock:
            c = self._conn(event)
            if c is not None:
                c.called, c.calling, c.rejected = rq.called, rq.calling, refused[:16]
                c.max_pdu, c.roles = rq.max_pdu, rq.roles
            number = c.number if c else None
            peer = c.peer if c else None
            self._last_activity = self.timeline.now()
        detail = rq.detail(refused)
        self.timeline.add(EventKind.ASSOCIATE_RQ, peer=peer, association=number, detail=detail)

    def _on_accepted(self, event: Any) -> None:
        """A-ASSOCIATE-AC sent: record each proposed context with our answer (PS3.8 9.3.3.2)."""
        contexts = context_records(event.assoc)
        with self._lock:
            c = self._conn(event)
            if c is not None:
                c.accepted = True
                c.contexts = tuple(
                    dataclasses.replace(r, scu_role=c.roles.get(r.abstract_syntax, (None,))[0],
                                        scp_role=c.roles.get(r.abstract_syntax, (None, None))[1])
                    for r in contexts
                )  # fmt: skip
            number = c.number if c else None
        accepted = sum(r.result == "accepted" for r in contexts)
        detail: dict[str, Any] = {"accepted": accepted, "rejected": len(contexts) - accepted}
        refused = [f"{r.abstract_syntax}: {r.result}" for r in contexts if r.result != "accepted"]
        if refused:
            detail["refused"] = refused[:8]
        self.timeline.add(EventKind.ACCEPTED, association=number, detail=detail)

    def _on_rejected(self, event: Any) -> None:
        with self._lock:
            c = self._conn(event)
            number = c.number if c else None
        self.timeline.add(EventKind.REJECTED, association=number)

    def _on_store(self, event: Any) -> int:
        t = self.timeline.now()
        req = event.request
        size = dataset_size(req)
        status: int = DicomStatus.SUCCESS
        error = None
        if self.save_dir is not None:
            try:
                self._save(event, req)
            except OSError as exc:
                status, error = (
                    DicomStatus.OUT_OF_RESOURCES,
                    f"{type(exc).__name__}: {exc}",
                )  # Out of resources
        with self._lock:
            c = self._conn(event)
            if status == DicomStatus.SUCCESS:
                self._received += 1
                if self._final_t is not None and t > self._final_t:
                    self._after_final += 1
            else:
                self._failed += 1
            self._bytes += size
            self._first_store_t = t if self._first_store_t is None else self._first_store_t
            self._last_store_t = t
            self._last_activity = t
            nth = 0
            if c is not None:
                c.stores += status == DicomStatus.SUCCESS
                c.store_failures += status != DicomStatus.SUCCESS
                c.bytes += size
                c.first_store_t = t if c.first_store_t is None else c.first_store_t
                c.last_store_t = t
                if status not in c.statuses and len(c.statuses) < MAX_STATUSES:
                    c.statuses.append(status)
                if c.originator is None:
                    c.originator = aet(getattr(req, "MoveOriginatorApplicationEntityTitle", None))
                nth = c.stores + c.store_failures
            number = c.number if c else None
        if nth <= STORE_EVENTS_PER_ASSOCIATION or error:
            detail: dict[str, Any] = {"bytes": size, "status": status}
            # what the PACS sent it as: a later preflight replays it (--contexts-from)
            sop = str(getattr(req, "AffectedSOPClassUID", "") or "")
            ts = str(getattr(getattr(event, "context", None), "transfer_syntax", "") or "")
            if sop and ts:
                detail["sop_class"], detail["transfer_syntax"] = sop, ts
            if error:
                detail["error"] = error
            self.timeline.add(EventKind.C_STORE, association=number, t=t, detail=detail)
        return status

    def _on_ended(self, how: str) -> Any:
        kind = {
            "released": EventKind.RELEASED,
            "aborted": EventKind.ABORTED,
            "closed": EventKind.CLOSED,
        }[how]

        def handler(event: Any) -> None:
            t = self.timeline.now()
            with self._lock:
                c = self._conn(event)
                if c is None:
                    return
                self._last_activity = t
                if how == "closed":
                    # The connection is gone: the association's record is complete.
                    self._conns.pop(id(event.assoc), None)
                    self._done.append(c)
                if c.ended is not None:
                    return
                c.ended, c.ended_t = how, t
                stores = c.stores
            self.timeline.add(kind, association=c.number, t=t, stores=stores)

        return handler

    def _save(self, event: Any, req: Any) -> None:
        assert self.save_dir is not None
        uid = str(getattr(req, "AffectedSOPInstanceUID", "") or "")
        with self._lock:
            self._saved += 1
            n = self._saved
        stem = uid if UID_RE.match(uid) and len(uid) <= 64 else f"image-{n:06d}"
        save_new_file(self.save_dir, stem, event.encoded_dataset(include_meta=True))
