"""`reverseprobe move-test`: C-ECHO, C-FIND, C-MOVE to our own listener, C-GET -> Report.

The steps run one after another in the calling (main) thread, so Ctrl-C lands in a `finally`
that releases or aborts the open association and stops the listener. Each step gets a share of
one Deadline; the C-MOVE gets most of it, and the grace period after its final response (late
images from a faulty PACS) comes out of the same budget. Nothing is ever stored, changed or
deleted on the PACS: C-FIND, C-MOVE and C-GET only read.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reverseprobe.config import (
    ENV_IP_SERVICES,
    BadInput,
    MoveTestConfig,
    parse_url,
    split_env_list,
)
from reverseprobe.diagnosis.move import rules
from reverseprobe.diagnosis.pacs import pacs_entry
from reverseprobe.dicom.find import FindResult, find_study
from reverseprobe.dicom.get import GetResult, c_get
from reverseprobe.dicom.move import MoveOutcome, MoveResult, c_move
from reverseprobe.dicom.qr import (
    NO_RESPONSE_TEXT,
    AssocState,
    EchoProbeResult,
    NoResponse,
    StatusWord,
    Target,
    status_meaning,
    status_word,
)
from reverseprobe.dicom.receiver import PortBusyError, Receiver
from reverseprobe.dicom.timeline import EventKind, Timeline, describe
from reverseprobe.environment import Environment
from reverseprobe.model import ProbeResult, Report, Status
from reverseprobe.model.dicom import DicomResult, PacsTcp
from reverseprobe.probes.pacs_address import AddressLookup, resolve
from reverseprobe.runner import Deadline, Listener

PROBE_NAMES = ("echo", "find", "move", "get")
MARGIN_S = 0.3  # kept back from the deadline to build and render the report
ECHO_BUDGET_S = 10.0
FIND_BUDGET_S = 30.0
GET_PROBE_BUDGET_S = 5.0
ADDRESS_BUDGET_S = 5.0
GRACE_POLL_S = 0.05
STOP_RESERVE_S = 0.5  # pynetdicom's server polls every 0.5 s: shutdown() waits that long


def move_test_config(args: argparse.Namespace, env: Environment) -> MoveTestConfig:
    """argparse -> MoveTestConfig; BadInput (exit 2) names a bad value."""
    host, port = args.pacs
    if args.ip_services:
        services: tuple[str, ...] | None = tuple(args.ip_services)
    else:
        items = split_env_list(env.environ.get(ENV_IP_SERVICES))
        services = tuple(parse_url(u, what=f"URL in {ENV_IP_SERVICES}") for u in items) or None
    save_dir = _save_dir(args.save) if getattr(args, "save", None) else None
    grace = float(getattr(args, "grace", 5.0))
    if grace >= args.timeout:
        raise BadInput(f"invalid grace period {grace:g}: must be shorter than --timeout")
    return MoveTestConfig(
        pacs_host=host,
        pacs_port=port,
        pacs_aet=args.pacs_aet,
        aet=args.aet,
        port=args.port,
        study=args.study,
        try_cget=bool(args.try_cget),
        save_dir=save_dir,
        grace=grace,
        ip_services=services,
        public_ip=not args.no_public_ip,
        strict=bool(args.strict),
        timeout=args.timeout,
    )


def _save_dir(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise BadInput(f"invalid --save {value!r}: not an existing directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise BadInput(f"invalid --save {value!r}: not writable")
    return path


def run_move_test(
    cfg: MoveTestConfig,
    *,
    on_update: Listener | None = None,
    deadline: Deadline | None = None,
) -> Report:
    t0 = time.monotonic()
    outer = deadline or Deadline.after(cfg.timeout)
    dl = Deadline(outer.at - MARGIN_S)
    timeline = Timeline(t0)
    notify = on_update or (lambda _n, _s: None)
    probes: dict[str, ProbeResult] = {}
    # Resolve once, bounded (a stuck resolver must not eat the deadline); every DICOM call
    # then dials the address, so no library resolves the name again without a timeout.
    pacs_ip, resolve_error = resolve(cfg.pacs_host, dl.share(ADDRESS_BUDGET_S))
    addresses = AddressLookup(cfg, pacs_ip, dl.child(ADDRESS_BUDGET_S))
    target = Target(pacs_ip or cfg.pacs_host, cfg.pacs_port, cfg.pacs_aet, cfg.aet)

    if pacs_ip is None:
        unresolved = EchoProbeResult(
            status=Status.FAIL,
            reason=resolve_error,
            tcp=PacsTcp.UNRESOLVED,
            result=DicomResult.NOT_TESTED,
            detail=resolve_error,
        )
        probes["echo"] = _step("echo", notify, lambda: unresolved)
    else:
        probes["echo"] = _step("echo", notify, lambda: _echo(target, dl))
    echo_ok = getattr(probes["echo"], "result", None) == "accepted"
    if echo_ok:
        find_dl = dl.child(min(FIND_BUDGET_S, dl.remaining() * 0.25))
        probes["find"] = _step("find", notify, lambda: find_study(target, find_dl, study=cfg.study))
    else:
        probes["find"] = _skip("find", notify, "the PACS did not accept an association (see echo)")
    find = probes["find"]
    study = find.study_uid if isinstance(find, FindResult) else None
    if study:
        left = dl.remaining()
        get_reserve = left * 0.4 if cfg.try_cget else min(GET_PROBE_BUDGET_S, left * 0.15)
        move_dl = Deadline(max(time.monotonic() + 1.0, dl.at - get_reserve))
        probes["move"] = _step("move", notify, lambda: _move(cfg, target, find, move_dl, timeline))
    else:
        why = "no study to move (see find)" if echo_ok else "the PACS is not reachable (see echo)"
        probes["move"] = _skip("move", notify, why)
    if echo_ok:
        get_study = study if cfg.try_cget else None
        probes["get"] = _step("get", notify, lambda: _get(cfg, target, find, get_study, dl))
    else:
        probes["get"] = _skip("get", notify, "the PACS is not reachable (see echo)")

    view = addresses.result(dl.share(ADDRESS_BUDGET_S))
    entry = pacs_entry(cfg, view)
    return Report(
        command="move-test",
        probes=probes,
        findings=rules(probes, cfg, entry, view),
        pacs_entry=entry,
        elapsed_s=time.monotonic() - t0,
        strict=cfg.strict,
        extra={"addresses": dataclasses.asdict(view)},
    )


def _step(name: str, notify: Listener, fn: Callable[[], ProbeResult]) -> ProbeResult:
    """Run one step; an exception becomes an `error` result (KeyboardInterrupt goes on)."""
    notify(name, None)
    t0 = time.monotonic()
    try:
        res = fn()
    except Exception as exc:  # noqa: BLE001 - a step that fails becomes a result
        res = ProbeResult(status=Status.ERROR, reason=f"{type(exc).__name__}: {exc}")
    if res.elapsed_s is None:
        res = dataclasses.replace(res, elapsed_s=round(time.monotonic() - t0, 4))
    notify(name, res.status)
    return res


def _skip(name: str, notify: Listener, why: str) -> ProbeResult:
    res = ProbeResult(status=Status.SKIPPED, reason=f"not tested: {why}")
    notify(name, res.status)
    return res


def timeline_lines(report: Report) -> list[str]:
    """The C-MOVE's timeline as text, one event a line (the JSON has it structured).
    For the terminal report: `reverseprobe.render.terminal` prints these under "Timeline"."""
    move = report.probes.get("move")
    if not isinstance(move, MoveResult) or not move.timeline:
        return []
    lines = [f"{e.t:8.3f} s  {describe(e)}" for e in move.timeline]
    listed = sum(1 for e in move.timeline if e.event is EventKind.C_STORE)
    if move.received + move.store_failures > listed:
        lines.append(
            f"{'':10}  ({move.received + move.store_failures - listed} more C-STORE(s) counted, "
            f"not listed)"
        )
    if move.timeline_dropped:
        lines.append(f"{'':10}  ({move.timeline_dropped} later event(s) not kept)")
    return lines


# --- steps -----------------------------------------------------------------------------------


def _echo(target: Target, dl: Deadline) -> EchoProbeResult:
    from reverseprobe.dicom.echo import echo

    budget = dl.share(min(ECHO_BUDGET_S, max(1.0, dl.remaining() * 0.15)))
    e = echo(
        target.host,
        target.port,
        called_aet=target.called_aet,
        calling_aet=target.calling_aet,
        timeout=budget,
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
    )


def _move(
    cfg: MoveTestConfig, target: Target, find: ProbeResult, dl: Deadline, timeline: Timeline
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
    if holders:
        return MoveResult(
            status=Status.FAIL, reason=f"port {cfg.port} is taken", port_busy=holders, **base
        )
    grace = min(cfg.grace, max(0.5, dl.remaining() / 3))
    recv = Receiver(
        cfg.aet,
        cfg.port,
        timeline,
        save_dir=cfg.save_dir,
        acse_timeout=min(10.0, dl.remaining()),
        network_timeout=max(1.0, dl.remaining()),
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
    try:
        listen_dl = Deadline(dl.at - STOP_RESERVE_S)  # stopping the listener takes ~0.5 s
        move_dl = Deadline(max(time.monotonic() + 0.5, listen_dl.at - grace))
        out = c_move(target, find.study_uid, cfg.aet, move_dl, timeline, on_final=recv.mark_final)
        if out.association.state is AssocState.ACCEPTED:
            _grace(
                recv, out, instances=find.instances, grace=grace, dl=listen_dl, timeline=timeline
            )
    finally:
        recv.stop()
    return _move_result(out, recv, grace, timeline, base)


def _grace(
    recv: Receiver,
    out: MoveOutcome,
    *,
    instances: int | None,
    grace: float,
    dl: Deadline,
    timeline: Timeline,
) -> None:
    """Keep listening after the final response: until every expected image is in and no
    association is open, or `grace` seconds have passed with nothing happening."""
    start = timeline.now()
    expected = out.completed if out.completed else instances
    why = "deadline"
    while not dl.expired:
        now = timeline.now()
        idle = now - max(recv.last_activity, start)
        if recv.open_associations == 0:
            if expected and recv.received >= expected and out.final_code is not None:
                why = "all images in"
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
    ok = (
        word in (StatusWord.SUCCESS, StatusWord.WARNING)
        and st.received > 0
        and not (out.failed or st.failed)
        and (not want or st.received >= want)
    )
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
        association=a.state,
        reject=a.reject,
        final_status=word,
        final_code=code,
        final_code_hex=f"0x{code:04X}" if code is not None else None,
        final_meaning=status_meaning(code) if code is not None else None,
        completed=out.completed,
        failed=out.failed,
        warning=out.warning,
        remaining=out.remaining,
        pending_responses=out.pending_responses,
        error_comment=out.error_comment,
        failed_instances=out.failed_instances,
        no_response=out.no_response,
        cancelled=out.cancelled,
        received=st.received,
        store_failures=st.failed,
        received_after_final=st.received_after_final,
        bytes_received=st.bytes,
        connections=st.connections,
        associations=st.associations,
        grace_s=round(grace, 3),
        final_t=None if out.final_t is None else round(out.final_t, 4),
        timeline=timeline.events(),
        timeline_dropped=timeline.dropped,
        **base,
    )


def _get(
    cfg: MoveTestConfig, target: Target, find: ProbeResult, study: str | None, dl: Deadline
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
