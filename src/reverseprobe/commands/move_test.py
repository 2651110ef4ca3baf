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

from reverseprobe.commands.move_observe import move_observed
from reverseprobe.commands.move_receive import STOP_RESERVE_S, move_to_own_receiver
from reverseprobe.config import MoveTestConfig
from reverseprobe.diagnosis.move import inbound_config, rules
from reverseprobe.diagnosis.pacs import pacs_entry
from reverseprobe.dicom.find import FindResult, find_study
from reverseprobe.dicom.get import GetResult, c_get
from reverseprobe.dicom.move import MoveResult
from reverseprobe.dicom.qr import EchoProbeResult, Target
from reverseprobe.dicom.timeline import Timeline
from reverseprobe.model import ProbeResult, Report, Status
from reverseprobe.model.dicom import DicomResult, PacsTcp
from reverseprobe.probes.pacs_address import AddressLookup, resolve
from reverseprobe.runner import Deadline, Interrupted, Listener, Plan, Step, run_steps

PROBE_NAMES = ("echo", "find", "inbound", "receiver", "move", "get")
MARGIN_S = 0.3  # kept back from the deadline to build and render the report
ECHO_BUDGET_S = 10.0
FIND_BUDGET_S = 30.0
GET_PROBE_BUDGET_S = 5.0
ADDRESS_BUDGET_S = 5.0
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
        return move_observed(cfg, target, find, dl, timeline, grace=grace, base=base,
                             holders=holders)  # fmt: skip
    if holders:
        return MoveResult(
            status=Status.FAIL, reason=f"port {cfg.port} is taken", port_busy=holders, **base
        )
    return move_to_own_receiver(cfg, target, find, dl, timeline, grace=grace, base=base)


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
