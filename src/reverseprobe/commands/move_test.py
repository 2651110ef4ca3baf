"""`reverseprobe move-test`: C-ECHO, C-FIND, C-MOVE to our own listener, C-GET -> Report.

The steps run one after another in the calling (main) thread, so Ctrl-C lands in a `finally`
that releases or aborts the open association and stops the listener. Each step gets a share of
one Deadline; the C-MOVE gets most of it, and the grace period after its final response (late
images from a faulty PACS) comes out of the same budget. Nothing is ever stored, changed or
deleted on the PACS: C-FIND, C-MOVE and C-GET only read.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reverseprobe.config import MoveTestConfig
from reverseprobe.diagnosis.move import delivered, inbound_config, rules
from reverseprobe.diagnosis.pacs import pacs_entry
from reverseprobe.dicom.find import FindResult, find_study
from reverseprobe.dicom.get import GetResult, c_get
from reverseprobe.dicom.grace import images_still_owed
from reverseprobe.dicom.move import MoveOutcome, MoveResult, c_move
from reverseprobe.dicom.observer import Observer
from reverseprobe.dicom.qr import (
    NO_RESPONSE_TEXT,
    AssocState,
    EchoProbeResult,
    NoResponse,
    Target,
    status_meaning,
    status_word,
)
from reverseprobe.dicom.receiver import PortBusyError, Receiver
from reverseprobe.dicom.timeline import EventKind, Timeline
from reverseprobe.model import ProbeResult, Report, Status
from reverseprobe.model.dicom import DicomResult, PacsTcp, StatusWord
from reverseprobe.probes.pacs_address import AddressLookup, resolve
from reverseprobe.runner import Deadline, Interrupted, Listener, Plan, Step, run_steps

PROBE_NAMES = ("echo", "find", "inbound", "receiver", "move", "get")
MARGIN_S = 0.3  # kept back from the deadline to build and render the report
ECHO_BUDGET_S = 10.0
FIND_BUDGET_S = 30.0
GET_PROBE_BUDGET_S = 5.0
ADDRESS_BUDGET_S = 5.0
GRACE_POLL_S = 0.05
OBSERVE_TAIL_S = 0.3  # running mode: watched after the final response once a connection came
STOP_RESERVE_S = 0.5  # pynetdicom's server polls every 0.5 s: shutdown() waits that long
OWN_SKIP = "move-test's own receiver takes --port"
RECEIVER_BUDGET_S = 15.0  # the preflight: a C-FIND for the contexts and four associations
INBOUND_BUDGET_S = 12.0  # the reflector's dial-back of --port (probes/inbound.py)
NO_REFLECTOR = "no reflector configured (--reflector URL or REVERSEPROBE_REFLECTOR)"


def plan(cfg: MoveTestConfig, time_left: float) -> Plan:
    """Budgets of the four sequential steps, from the time there is: the echo and the find
    get small shares, the C-GET a reserve (a real C-GET with --try-cget, else a short
    capability probe), and the C-MOVE the rest, the grace period and the listener's stop
    inside it (`parts["move"]`)."""
    t = max(0.0, time_left - MARGIN_S)
    echo = min(ECHO_BUDGET_S, max(1.0, t * 0.15), t)
    find = min(FIND_BUDGET_S, (t - echo) * 0.25)
    rest = max(0.0, t - echo - find)
    get = rest * 0.4 if cfg.try_cget else min(GET_PROBE_BUDGET_S, rest * 0.15)
    # The receiver preflight runs only when the user's receiver holds the port (not "own").
    recv = 0.0 if cfg.receiver == "own" else min(RECEIVER_BUDGET_S, (rest - get) * 0.2)
    inbound = min(INBOUND_BUDGET_S, (rest - get) * 0.25) if cfg.reflector else 0.0
    move = rest - get - recv - inbound
    grace = min(cfg.grace, max(0.5, move / 3), move / 2)  # the C-MOVE keeps half at least
    stop = min(STOP_RESERVE_S, max(0.0, move - grace))
    move_parts = Plan(
        (
            Step("c-move", max(0.0, move - grace - stop)),
            Step("grace", grace),
            Step("stop", stop),
        ),
        sequential=True,
        margin_s=0.0,
    )
    return Plan(
        (Step("echo", echo), Step("find", find), Step("inbound", inbound),
         Step("receiver", recv),
         Step("move", move, takes_rest=True), Step("get", get)),
        sequential=True,
        margin_s=MARGIN_S,
        parts={"move": move_parts},
    )  # fmt: skip


def run(
    cfg: MoveTestConfig,
    *,
    on_update: Listener | None = None,
    deadline: Deadline | None = None,
) -> Report:
    """echo -> find -> move -> get through `runner.run_steps`; success is decided once, by
    diagnosis.move. Ctrl-C raises Interrupted carrying the Report of what was measured."""
    t0 = time.monotonic()
    outer = deadline or Deadline.after(cfg.timeout)
    the_plan = plan(cfg, outer.remaining())
    timeline = Timeline(t0)
    lookup: list[AddressLookup] = []
    target_box: list[Target] = []

    def echo_step(dl: Deadline, _done: Mapping[str, ProbeResult]) -> ProbeResult:
        # Resolve once, bounded (a stuck resolver must not eat the deadline); every DICOM
        # call then dials the address, so no library resolves the name again.
        pacs_ip, resolve_error = resolve(cfg.pacs_host, dl.share(ADDRESS_BUDGET_S, reserve=0.5))
        lookup.append(AddressLookup(cfg, pacs_ip, outer.child(ADDRESS_BUDGET_S)))
        target_box.append(
            Target(pacs_ip or cfg.pacs_host, cfg.pacs_port, cfg.pacs_aet, cfg.aet,
                   tls=cfg.tls, tls_name=cfg.pacs_host)
        )  # fmt: skip
        if pacs_ip is None:
            return EchoProbeResult(
                status=Status.FAIL,
                reason=resolve_error,
                tcp=PacsTcp.UNRESOLVED,
                result=DicomResult.NOT_TESTED,
                detail=resolve_error,
            )
        return _echo(target_box[0], dl)

    def find_step(dl: Deadline, done: Mapping[str, ProbeResult]) -> ProbeResult:
        if not _accepted(done):
            return _skip("the PACS did not accept an association (see echo)")
        return find_study(target_box[0], dl, study=cfg.study)

    def inbound_step(dl: Deadline, _done: Mapping[str, ProbeResult]) -> ProbeResult:
        if not cfg.reflector:
            return _skip(NO_REFLECTOR)
        from reverseprobe.probes.inbound import probe_inbound

        return probe_inbound(inbound_config(cfg), dl)

    def receiver_step(dl: Deadline, done: Mapping[str, ProbeResult]) -> ProbeResult:
        if not _port_taken(cfg):
            return _skip(OWN_SKIP)
        find = done.get("find")
        return _preflight(cfg, target_box[0] if target_box else None, find, dl)

    def move_step(dl: Deadline, done: Mapping[str, ProbeResult]) -> ProbeResult:
        find = done.get("find")
        if not isinstance(find, FindResult) or not find.study_uid:
            ok = _accepted(done)
            return _skip(
                "no study to move (see find)" if ok else "the PACS is not reachable (see echo)"
            )
        grace = the_plan.parts["move"].budget("grace")
        return _move(cfg, target_box[0], find, dl, timeline, grace=grace)

    def get_step(dl: Deadline, done: Mapping[str, ProbeResult]) -> ProbeResult:
        if not _accepted(done):
            return _skip("the PACS is not reachable (see echo)")
        find = done.get("find")
        study = find.study_uid if isinstance(find, FindResult) and cfg.try_cget else None
        return _get(cfg, target_box[0], find, study, dl)

    steps = {"echo": echo_step, "find": find_step, "inbound": inbound_step,
             "receiver": receiver_step,
             "move": move_step, "get": get_step}  # fmt: skip
    try:
        probes = run_steps(the_plan, steps, outer, on_update=on_update)
    except Interrupted as exc:
        exc.report = _report(cfg, exc.results, lookup, outer, t0)
        raise
    return _report(cfg, probes, lookup, outer, t0)


run_move_test = run  # the name the tests and the checklist use


def _report(
    cfg: MoveTestConfig,
    probes: Mapping[str, ProbeResult],
    lookup: list[AddressLookup],
    outer: Deadline,
    t0: float,
) -> Report:
    got = dict(probes)
    pf = got.get("receiver")
    if pf is not None and pf.status is Status.SKIPPED and str(pf.reason).endswith(OWN_SKIP):
        del got["receiver"]  # not applicable: our own receiver took the port
    ib = got.get("inbound")
    if ib is not None and ib.status is Status.SKIPPED and str(ib.reason).endswith(NO_REFLECTOR):
        del got["inbound"]  # not asked for: move-test measures the way in only with a reflector
    if lookup:
        view = lookup[0].result(outer.share(ADDRESS_BUDGET_S))
    else:
        view = AddressLookup(cfg, None, outer.child(0.0)).result(0.0)
    entry = pacs_entry(cfg, view)
    return Report(
        command="move-test",
        probes=got,
        findings=rules(got, cfg, entry, view),
        pacs_entry=entry,
        elapsed_s=time.monotonic() - t0,
        strict=cfg.strict,
        extra={"addresses": dataclasses.asdict(view)},
    )


def _accepted(done: Mapping[str, ProbeResult]) -> bool:
    return getattr(done.get("echo"), "result", None) is DicomResult.ACCEPTED


def _skip(why: str) -> ProbeResult:
    return ProbeResult(status=Status.SKIPPED, reason=f"not tested: {why}")


# --- steps -----------------------------------------------------------------------------------


def _port_taken(cfg: MoveTestConfig) -> bool:
    """Running mode will be used: asked for, or (auto) a program listens on --port."""
    from reverseprobe.probes.listeners import listening_sockets

    if cfg.receiver == "own":
        return False
    if cfg.receiver == "running":
        return True
    try:
        return bool(listening_sockets(cfg.port)[0])
    except Exception:  # noqa: BLE001 - unreadable socket table: the move step decides
        return False


def _preflight(
    cfg: MoveTestConfig, target: Target | None, find: ProbeResult | None, dl: Deadline
) -> ProbeResult:
    """The receiver preflight on --port (probes/receiver.py): --context pairs, else what the
    PACS proposed in a recorded move (--contexts-from), else what its IMAGE-level C-FIND says
    it holds, else its SOP classes in uncompressed syntaxes."""
    from reverseprobe.probes.receiver import contexts_for, image_contexts, preflight, receiver_host

    pairs: list[tuple[str, str]] = list(cfg.contexts)
    source = "option"
    if not pairs and cfg.recorded_contexts:
        pairs, source = list(cfg.recorded_contexts), "recorded-move"
    if not pairs and target is not None and isinstance(find, FindResult) and find.study_uid:
        pairs = image_contexts(target, find.study_uid, dl.child(dl.remaining() / 3))
        source = "c-find"
    given = cfg.contexts or cfg.recorded_contexts
    classes = find.sop_classes if isinstance(find, FindResult) and not given else ()
    chosen, source = contexts_for(pairs, classes, source)
    # The PACS's storage sender usually calls with its Q/R AE title: ours pretends to be it.
    return preflight(receiver_host(cfg.port), cfg.port, cfg.aet, cfg.pacs_aet, chosen,
                     deadline=dl, source=source)  # fmt: skip


def _echo(target: Target, dl: Deadline) -> EchoProbeResult:
    from reverseprobe.dicom.echo import echo

    budget = dl.share(min(ECHO_BUDGET_S, max(1.0, dl.remaining() * 0.15)))
    e = echo(
        target.host,
        target.port,
        called_aet=target.called_aet,
        calling_aet=target.calling_aet,
        timeout=budget,
        tls=target.tls,
        tls_name=target.tls_name,
    )
    ok = e.result is DicomResult.ACCEPTED
    return EchoProbeResult(
        status=Status.OK if ok else Status.FAIL,
        reason=None if ok else (e.detail or e.result.value),
        tcp=PacsTcp(e.tcp.value),
        result=e.result,
        reject=e.reject,
        echo_status=e.echo_status,
        implementation_class_uid=e.implementation_class_uid,
        implementation_version_name=e.implementation_version_name,
        detail=e.detail,
        tls=e.tls,
    )


def _move(  # noqa: PLR0913 - the move step's inputs: config, target, study, deadline, timeline, progress
    cfg: MoveTestConfig,
    target: Target,
    find: ProbeResult,
    dl: Deadline,
    timeline: Timeline,
    *,
    grace: float,
) -> MoveResult:
    """Listen on --port, C-MOVE the study to --aet, keep listening for the grace period."""
    from reverseprobe.probes.listeners import listening_sockets

    assert isinstance(find, FindResult) and find.study_uid
    base: dict[str, Any] = {
        "study_uid": find.study_uid,
        "destination": cfg.aet,
        "port": cfg.port,
        "expected": find.instances,
    }
    try:
        holders = tuple(listening_sockets(cfg.port)[0])
    except Exception:  # noqa: BLE001 - unreadable socket table: the bind below still tells
        holders = ()
    if cfg.receiver == "running" or (cfg.receiver == "auto" and holders):
        return _move_observed(cfg, target, find, dl, timeline, grace=grace, base=base,
                              holders=holders)  # fmt: skip
    if holders:
        return MoveResult(
            status=Status.FAIL, reason=f"port {cfg.port} is taken", port_busy=holders, **base
        )
    recv = Receiver(
        cfg.aet,
        cfg.port,
        timeline,
        save_dir=cfg.save_dir,
        acse_timeout=min(10.0, dl.remaining()),
        network_timeout=max(1.0, dl.remaining()),
        ssl_context=_receiver_tls(cfg),
    )
    try:
        recv.start()
    except PortBusyError as exc:
        try:
            holders = tuple(listening_sockets(cfg.port)[0])
        except Exception:  # noqa: BLE001
            holders = ()
        return MoveResult(
            status=Status.FAIL,
            reason=f"port {cfg.port} is taken",
            port_busy=holders,
            port_error=str(exc),
            **base,
        )
    out: MoveOutcome | None = None
    try:
        listen_dl = Deadline(dl.at - STOP_RESERVE_S)  # stopping the listener takes ~0.5 s
        move_dl = Deadline(max(time.monotonic() + 0.5, listen_dl.at - grace))
        out = c_move(target, find.study_uid, cfg.aet, move_dl, timeline, on_final=recv.mark_final)
        if out.association.state is AssocState.ACCEPTED:
            _grace(
                recv, out, instances=find.instances, grace=grace, dl=listen_dl, timeline=timeline
            )
    except KeyboardInterrupt as exc:
        recv.stop()
        if out is not None:  # the final response is in: keep what was measured (runner.run_steps)
            timeline.add(EventKind.GRACE_END, why="interrupted", received=recv.received)
            kept = _move_result(out, recv, grace, timeline, base)
            exc.partial = dataclasses.replace(  # type: ignore[attr-defined]
                kept, reason=f"interrupted (Ctrl-C); {kept.reason or 'measured so far'}"
            )
        raise
    finally:
        recv.stop()
    return _move_result(out, recv, grace, timeline, base)


def _receiver_tls(cfg: MoveTestConfig) -> Any:
    """move-test --tls: our receiver's server context (PS3.15 B.1); with --tls-ca the PACS
    must show a certificate of that CA. config.py checked that the pair loads."""
    if cfg.tls is None or not cfg.tls.cert:
        return None
    from reverseprobe.dicom.tls import server_context

    return server_context(cfg.tls)


def _move_observed(  # noqa: PLR0913 - the observed move's inputs (running receiver mode, issue 11)
    cfg: MoveTestConfig,
    target: Target,
    find: FindResult,
    dl: Deadline,
    timeline: Timeline,
    *,
    grace: float,
    base: dict[str, Any],
    holders: tuple[Any, ...],
) -> MoveResult:
    """Running mode: the user's receiver holds --port; C-MOVE to --aet and watch which
    connections reach the port (Observer), touching nothing of that receiver."""
    assert find.study_uid
    if not holders:
        return MoveResult(
            status=Status.FAIL,
            reason=f"nothing listens on port {cfg.port}: start your receiver before the move",
            receiver_mode="running",
            **base,
        )
    first = holders[0]
    obs = Observer(
        cfg.port, timeline, (getattr(first, "pid", None), getattr(first, "process", None))
    )
    out: MoveOutcome | None = None
    try:
        obs.start()
        move_dl = Deadline(max(time.monotonic() + 0.5, dl.at - grace - OBSERVE_TAIL_S))
        out = c_move(target, find.study_uid, cfg.aet, move_dl, timeline)
        if out.association.state is AssocState.ACCEPTED:
            # A PACS that answers before it sends (asynchronous move) connects afterwards.
            end = time.monotonic() + (OBSERVE_TAIL_S if obs.connections else grace)
            while time.monotonic() < min(end, dl.at) and not obs.connections:
                time.sleep(GRACE_POLL_S)
            timeline.add(EventKind.GRACE_END, why="observed", received=0)
    finally:
        obs.stop()
    assocs = obs.associations()
    code = out.final_code
    word = status_word(code) if code is not None else None
    a = out.association
    complete = (
        word in (StatusWord.SUCCESS, StatusWord.WARNING)
        and not out.failed
        and bool(out.completed)
        and bool(assocs)
    )
    if a.state is not AssocState.ACCEPTED:
        reason: str | None = f"association {a.state.value}" + (f": {a.detail}" if a.detail else "")
    elif code is None:
        reason = (
            f"no final C-MOVE response: {NO_RESPONSE_TEXT[out.no_response or NoResponse.TIMEOUT]}"
        )
    elif not complete:
        reason = (
            f"final status 0x{code:04X} ({status_meaning(code)}), {len(assocs)} connection(s) "
            f"to port {cfg.port} observed"
        )
    else:
        reason = None
    status = Status.OK if complete else Status.FAIL
    if code is None and out.no_response is NoResponse.TIMEOUT:
        status = Status.TIMEOUT
    return MoveResult(
        status=status,
        reason=reason,
        **_from_outcome(out),
        connections=obs.connections,
        associations=assocs,
        grace_s=round(grace, 3),
        **_timing(out, timeline),
        receiver_mode="running",
        observer_note=obs.note,
        port_busy=None,
        **base,
    )


def _grace(  # noqa: PLR0913 - the grace wait reads the move, the receiver and the study's count
    recv: Receiver,
    out: MoveOutcome,
    *,
    instances: int | None,
    grace: float,
    dl: Deadline,
    timeline: Timeline,
) -> None:
    """Keep listening after the final response: until no association is open and no image is
    owed (dicom.grace: the counts decide), or `grace` seconds have passed with nothing
    happening."""
    start = timeline.now()
    why = "deadline"
    while not dl.expired:
        now = timeline.now()
        idle = now - max(recv.last_activity, start)
        if recv.open_associations == 0:
            if not images_still_owed(out, received=recv.received, instances=instances):
                why = "all images in" if recv.received else "no images claimed"
                break
            if idle >= grace:
                why = "grace period over"
                break
        elif idle >= grace:
            why = "an inbound association stayed silent"
            break
        time.sleep(GRACE_POLL_S)
    timeline.add(EventKind.GRACE_END, why=why, received=recv.received)


def _move_result(
    out: MoveOutcome, recv: Receiver, grace: float, timeline: Timeline, base: dict[str, Any]
) -> MoveResult:
    st = recv.stats()
    code = out.final_code
    word = status_word(code) if code is not None else None
    a = out.association
    want = out.completed or base.get("expected")
    ok = delivered(word=word, received=st.received, failed=(out.failed or 0) + st.failed, want=want)
    ok = ok and not out.cancelled and not out.remaining  # cut short by our C-CANCEL: not all
    if a.state is not AssocState.ACCEPTED:
        reason: str | None = f"association {a.state.value}" + (f": {a.detail}" if a.detail else "")
    elif code is None:
        reason = (
            f"no final C-MOVE response: {NO_RESPONSE_TEXT[out.no_response or NoResponse.TIMEOUT]}"
        )
    elif not ok:
        reason = f"final status 0x{code:04X} ({status_meaning(code)}), {st.received} received"
    else:
        reason = None
    status = Status.OK if ok else Status.FAIL
    if code is None and out.no_response is NoResponse.TIMEOUT:
        status = Status.TIMEOUT
    return MoveResult(
        status=status,
        reason=reason,
        **_from_outcome(out),
        received=st.received,
        store_failures=st.failed,
        received_after_final=st.received_after_final,
        bytes_received=st.bytes,
        connections=st.connections,
        associations=st.associations,
        grace_s=round(grace, 3),
        **_timing(out, timeline),
        **base,
        tls=recv.tls,
    )


def _from_outcome(out: MoveOutcome) -> dict[str, Any]:
    """The MoveResult fields that restate the C-MOVE's own outcome (own and observed mode)."""
    code, a = out.final_code, out.association
    return {
        "association": a.state,
        "reject": a.reject,
        "final_status": status_word(code) if code is not None else None,
        "final_code": code,
        "final_code_hex": f"0x{code:04X}" if code is not None else None,
        "final_meaning": status_meaning(code) if code is not None else None,
        "completed": out.completed,
        "failed": out.failed,
        "warning": out.warning,
        "remaining": out.remaining,
        "pending_responses": out.pending_responses,
        "error_comment": out.error_comment,
        "failed_instances": out.failed_instances,
        "no_response": out.no_response,
        "cancelled": out.cancelled,
    }


def _timing(out: MoveOutcome, timeline: Timeline) -> dict[str, Any]:
    """When the final response came, the timeline, and the stall (own and observed mode)."""
    return {
        "final_t": None if out.final_t is None else round(out.final_t, 4),
        "timeline": timeline.events(),
        "timeline_dropped": timeline.dropped,
        "stall_s": _stall(out, timeline),
    }


def _stall(out: MoveOutcome, timeline: Timeline) -> float | None:
    """Seconds from the last pending C-MOVE response to the end of the wait, when pending
    responses came and then no final one (PS3.4 C.4.2.1.4: pending until the last sub-op)."""
    if not out.pending_responses or (out.final_code is not None and not out.cancelled):
        return None  # a final response that our C-CANCEL did not force: no stall
    events = timeline.events()
    pending = [e.t for e in events if e.event is EventKind.MOVE_PENDING]
    if not pending:
        return None
    end = [e.t for e in events if e.event in (EventKind.MOVE_NO_RESPONSE, EventKind.MOVE_CANCEL)]
    return round(min(end or [timeline.now()]) - pending[-1], 3)  # until we gave up


def _get(
    cfg: MoveTestConfig, target: Target, find: ProbeResult | None, study: str | None, dl: Deadline
) -> GetResult:
    """C-GET capability (association with the GET context); with --try-cget, a real C-GET
    whose images are counted and discarded (or saved with --save)."""
    classes = find.sop_classes if isinstance(find, FindResult) else ()
    count = [0]
    lock = threading.Lock()

    def on_store(event: Any) -> int:
        if cfg.save_dir is not None:
            try:
                _save_get(cfg.save_dir, event)
            except OSError:
                return 0xA700
        with lock:
            count[0] += 1
        return 0x0000

    budget = dl if study else dl.child(GET_PROBE_BUDGET_S)
    res = c_get(target, study, classes, budget, on_store)
    return dataclasses.replace(res, received=count[0])


def _save_get(save_dir: Path, event: Any) -> None:
    uid = str(getattr(event.request, "AffectedSOPInstanceUID", "") or "image")
    name = "".join(ch for ch in uid if ch.isdigit() or ch == ".")[:64] or "image"
    with open(save_dir / f"cget-{name}.dcm", "xb") as f:
        f.write(event.encoded_dataset(include_meta=True))
