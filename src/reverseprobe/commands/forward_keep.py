"""`forward --keep`: hold the mapping while reverseprobe runs, renewing it before its lease ends.

Renewal is the same safe pass as the first one (it re-adds only a mapping that is still ours,
and re-creates one the router lost, e.g. after a reboot) at half the granted lease. Ctrl-C (or
SIGTERM) ends it: a mapping this run created is removed on the way out; one that was already
in place before the run is left as it was found. Progress goes to stderr; stdout gets nothing
until a report is returned (only when holding fails). Ctrl-C ends as KeyboardInterrupt, which
the CLI turns into exit 130.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from reverseprobe.config import ForwardConfig
from reverseprobe.diagnosis import forward as advice
from reverseprobe.environment import Environment
from reverseprobe.model import Report, Status
from reverseprobe.model.forward import Action, MappingResult, Request
from reverseprobe.model.forward import PortmapRouterResult as RouterResult
from reverseprobe.portmap.state import NonceStore
from reverseprobe.runner import Deadline

PERMANENT_CHECK_S = 60.0  # a permanent mapping is only checked for being still there
RETRY_S = 5.0  # after a failed renewal
MIN_INTERVAL_S = 1.0
_CREATED = (Action.ADDED, Action.REPLACED)

Pass = tuple[RouterResult, MappingResult]


def renew_interval(granted: int | None, lease: int) -> float:
    """Half the granted lease (RFC 6886 3.3 advises renewing at half), else half the asked."""
    seconds = granted if granted else lease
    if not seconds:
        return PERMANENT_CHECK_S
    return max(MIN_INTERVAL_S, seconds / 2)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends --keep like Ctrl-C (only the main thread may set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _say(env: Environment, text: str) -> None:
    print(f"reverseprobe forward: {text}", file=env.stderr, flush=True)


def _describe(m: MappingResult, router: RouterResult) -> str:
    ext = router.external_ip or "?"
    lease = "permanent" if m.lease_granted == 0 else f"lease {m.lease_granted} s"
    via = m.via.value if m.via else "?"
    return f"TCP {ext}:{m.public_port} -> {m.internal_client}:{m.internal_port} ({via}, {lease})"


def keep(  # noqa: PLR0913 - keyword-only injection points (one_pass, sleep) for tests
    cfg: ForwardConfig,
    req: Request,
    gateway: str | None,
    report: Report,
    *,
    env: Environment,
    store: NonceStore | None,
    one_pass: Callable[..., Pass],
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Renew until interrupted; a Report only when the mapping can no longer be held."""
    first = report.probes["mapping"]
    router = report.probes["router"]
    assert isinstance(first, MappingResult) and isinstance(router, RouterResult)
    created = first.action in _CREATED
    renew_req = replace(req, force=False)  # --force applied once; never take a port over again
    entry = report.pacs_entry
    _say(env, f"holding {_describe(first, router)}")
    if entry is not None:
        _say(
            env,
            f"PACS entry: AE title {entry.aet or '(--aet)'}, host {entry.host}, port {entry.port}",
        )
    _say(
        env,
        "Ctrl-C stops"
        + (" and removes the mapping" if created else " (the mapping stays as it was found)"),
    )
    last = first
    wait = renew_interval(first.lease_granted, req.lease)
    with _sigterm_as_interrupt():
        try:
            while True:
                sleep(wait)
                router, m = one_pass(
                    cfg, renew_req, gateway, Deadline.after(cfg.timeout), store, action="add"
                )
                if m.done and m.status is Status.OK:
                    last = m
                    wait = renew_interval(m.lease_granted, req.lease)
                    _say(env, f"renewed {_describe(m, router)}; next in {wait:.0f} s")
                    continue
                _say(env, f"renewal failed: {m.reason or m.action.value}")
                if m.action in (Action.HELD_BY_OTHER, Action.REFUSED):
                    return _failed_report(report, router, m)
                wait = min(RETRY_S, renew_interval(last.lease_granted, req.lease))
        except KeyboardInterrupt:
            if created:
                _remove(cfg, req, gateway, env=env, store=store, one_pass=one_pass)
            raise


def _remove(  # noqa: PLR0913 - keyword-only; the same context as keep()
    cfg: ForwardConfig,
    req: Request,
    gateway: str | None,
    *,
    env: Environment,
    store: NonceStore | None,
    one_pass: Callable[..., Pass],
) -> None:
    """Remove the mapping this run created; bounded by --timeout; a second Ctrl-C aborts."""
    try:
        _, m = one_pass(
            cfg,
            replace(req, force=False, dry_run=False),
            gateway,
            Deadline.after(cfg.timeout),
            store,
            action="remove",
        )
    except KeyboardInterrupt:
        _say(env, "interrupted again: the mapping may remain until its lease ends")
        return
    if m.action is Action.REMOVED:
        _say(env, f"removed the mapping of TCP port {req.external_port}")
    else:
        _say(
            env,
            f"could not remove the mapping of TCP port {req.external_port}: "
            f"{m.reason or m.action.value} (it ends with its lease)",
        )


def _failed_report(report: Report, router: RouterResult, m: MappingResult) -> Report:
    entry = report.pacs_entry
    ctx = advice.Context(
        aet=entry.aet if entry else None,
        port=m.internal_port,
        external_port=m.external_port,
        gateway=router.gateway,
        lan=m.internal_client,
        keep=True,
    )
    return replace(
        report,
        probes={**report.probes, "router": router, "mapping": m},
        findings=advice.findings(ctx, router, m, listing=False),
        pacs_entry=None,
    )
