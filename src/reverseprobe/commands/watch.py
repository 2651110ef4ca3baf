"""`reverseprobe watch`: keep the way in checked, and say what changed.

Every --interval (on Linux also soon after an address or route changes, seen on an rtnetlink
socket, rtnetlink(7)) it runs `check`'s probes and compares what matters for the PACS's
connection with the last round: the public address (the PACS entry goes stale: the new entry
to give), the router's mapping (gone, or taken by another host), the listener (gone or
replaced) and the dial-back. A leased mapping of ours (to this PC, described as
reverseprobe's) that would lapse before the next round is renewed, as forward --keep does.
Output: one human line per change, or JSON lines with --json; --exit-on-change (exit 1) for
supervisors; --count bounds the rounds; --metrics serves Prometheus metrics
(prometheus_client) so a hospital's monitoring watches every workstation.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from reverseprobe import config as c
from reverseprobe.environment import Environment
from reverseprobe.exitcodes import CommandFailed, ExitStatus
from reverseprobe.model import Report, Status
from reverseprobe.model.check import ListenersResult, PublicIpResult, RouterResult
from reverseprobe.model.inbound import InboundResult
from reverseprobe.runner import Deadline

DEBOUNCE_S = 1.0  # an address change comes in bursts (address, route, neighbour...)


@dataclass(frozen=True)
class Snapshot:
    """What one round measured; None: not measured this round (never a change by itself)."""

    public_ip: str | None = None
    mapping: str | None = None  # "CLIENT:PORT" the router forwards the port to, "" = none
    lan: str | None = None  # our address toward the router (who a mapping must name)
    listener: tuple[str, ...] | None = None  # "pid program" per socket; () = nothing listens
    inbound: str | None = None  # ok | fail (the dial-back); None: not tested
    reachable: bool | None = None
    durations: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    what: str  # public_ip | mapping | listener | inbound
    old: str | None
    new: str | None
    message: str
    pacs_entry: str | None = None


def snapshot(report: Report) -> Snapshot:
    """The fields watch compares, from one `check` report (only what was measured)."""
    p = report.probes
    pub = p.get("public_ip")
    inbound = p.get("inbound")
    router = p.get("router")
    lis = p.get("listeners")
    public = pub.address if isinstance(pub, PublicIpResult) and pub.status is Status.OK else None
    if public is None and isinstance(inbound, InboundResult) and inbound.observed_ip:
        public = inbound.observed_ip
    mapping = lan = None
    if isinstance(router, RouterResult) and router.status is Status.OK and router.mapping_checked:
        m = router.mapping
        mapping = f"{m.internal_client}:{m.internal_port}" if m is not None else ""
        lan = router.lan_address
    listener = None
    if isinstance(lis, ListenersResult) and lis.status is not Status.ERROR:
        listener = tuple(sorted(f"{s.pid or '?'} {s.process or '?'}" for s in lis.sockets))
    reach = None
    if isinstance(inbound, InboundResult) and inbound.status in (Status.OK, Status.FAIL):
        reach = inbound.status is Status.OK
    durations = {k: v.elapsed_s for k, v in p.items() if v.elapsed_s is not None}
    return Snapshot(
        public_ip=public,
        mapping=mapping,
        lan=lan,
        listener=listener,
        inbound=None if reach is None else ("ok" if reach else "fail"),
        reachable=reach,
        durations=durations,
    )


def changes(old: Snapshot, new: Snapshot, cfg: c.WatchConfig) -> list[Change]:
    """What differs between two rounds, among the values both measured."""
    out: list[Change] = []
    port = cfg.port
    if old.public_ip and new.public_ip and old.public_ip != new.public_ip:
        entry = f"{cfg.aet or 'YOUR-AE'} @ {new.public_ip}:{port}"
        out.append(
            Change(
                "public_ip",
                old.public_ip,
                new.public_ip,
                f"the public address changed from {old.public_ip} to {new.public_ip}: a PACS "
                f"entry naming {old.public_ip} is stale; give the PACS administrator {entry} "
                "(or, where the PACS accepts a host name, a dynamic-DNS name that follows it)",
                entry,
            )
        )
    if old.mapping is not None and new.mapping is not None and old.mapping != new.mapping:
        client = new.mapping.rpartition(":")[0]
        if not new.mapping:
            msg = f"the router's mapping for TCP {port} is gone (it was to {old.mapping})"
        elif new.lan and client != new.lan:
            msg = f"the router now forwards TCP {port} to another host, {new.mapping}"
        else:
            msg = f"the router's mapping for TCP {port} now points to {new.mapping}"
        out.append(Change("mapping", old.mapping or None, new.mapping or None, msg))
    if old.listener is not None and new.listener is not None and old.listener != new.listener:
        was, now = ", ".join(old.listener) or "nothing", ", ".join(new.listener) or "nothing"
        msg = (
            f"nothing listens on TCP {port} any more (it was {was})"
            if not new.listener
            else f"the listener on TCP {port} changed: {was} -> {now}"
        )
        out.append(Change("listener", was, now, msg))
    if old.inbound and new.inbound and old.inbound != new.inbound:
        msg = (
            f"the dial-back to TCP {port} fails now (it reached this PC before)"
            if new.inbound == "fail"
            else f"the dial-back to TCP {port} reaches this PC again"
        )
        out.append(Change("inbound", old.inbound, new.inbound, msg))
    return out


# --- waiting: the interval, or an address/route change -----------------------------------------


class NetlinkWaiter:
    """Wakes early when an address or route changes (Linux rtnetlink multicast groups);
    elsewhere, or when the socket cannot be opened, it just sleeps the interval."""

    GROUPS = 0x1 | 0x10 | 0x40 | 0x100 | 0x400  # LINK, IPV4_IFADDR, IPV4_ROUTE, IPV6_IFADDR, ROUTE

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        if sys.platform.startswith("linux"):
            try:
                s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
                s.bind((0, self.GROUPS))
                s.setblocking(False)
                self.sock = s
            except OSError:
                self.sock = None

    def wait(self, seconds: float) -> bool:
        """True when the network changed before `seconds` passed."""
        import select

        if self.sock is None:
            time.sleep(max(0.0, seconds))
            return False
        ready, _, _ = select.select([self.sock], [], [], max(0.0, seconds))
        if not ready:
            return False
        end = time.monotonic() + DEBOUNCE_S
        while (left := end - time.monotonic()) > 0:
            self._drain()
            select.select([self.sock], [], [], left)
        self._drain()
        return True

    def _drain(self) -> None:
        assert self.sock is not None
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            return

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


# --- metrics -------------------------------------------------------------------------------------


class Metrics:
    """The Prometheus endpoint: reachability, the public address, the last change, durations."""

    def __init__(self, host: str, port: int) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

        self.registry = CollectorRegistry()
        r = self.registry
        self.reachable = Gauge(
            "reverseprobe_reachable",
            "The dial-back reached this PC's listener: 1 yes, 0 no, -1 not tested",
            ["port"],
            registry=r,
        )
        self.public = Gauge(
            "reverseprobe_public_address_info",
            "The public address the PACS must dial (label), 1 for the current one",
            ["address"],
            registry=r,
        )
        self.listening = Gauge(
            "reverseprobe_listener_up", "A program listens on the port", ["port"], registry=r
        )
        self.last_change = Gauge(
            "reverseprobe_last_change_timestamp_seconds",
            "When watch last saw something change (Unix time; 0: nothing yet)",
            registry=r,
        )
        self.last_check = Gauge(
            "reverseprobe_last_check_timestamp_seconds", "When the last round ended", registry=r
        )
        self.duration = Gauge(
            "reverseprobe_probe_duration_seconds",
            "How long each probe took in the last round",
            ["probe"],
            registry=r,
        )
        self.checks = Counter("reverseprobe_checks", "Rounds run", registry=r)
        self.changes = Counter("reverseprobe_changes", "Changes seen", ["what"], registry=r)
        try:
            self.server, self.thread = start_http_server(port, addr=host, registry=r)
        except OSError as exc:
            raise CommandFailed(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None

    def update(self, snap: Snapshot, port: int, found: list[Change]) -> None:
        p = str(port)
        self.reachable.labels(p).set(-1 if snap.reachable is None else int(snap.reachable))
        if snap.public_ip:
            self.public.clear()
            self.public.labels(snap.public_ip).set(1)
        if snap.listener is not None:
            self.listening.labels(p).set(1 if snap.listener else 0)
        for name, secs in snap.durations.items():
            self.duration.labels(name).set(secs)
        self.checks.inc()
        self.last_check.set(time.time())
        for ch in found:
            self.changes.labels(ch.what).inc()
        if found:
            self.last_change.set(time.time())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- renewing what we own (as forward --keep does) -------------------------------------------

RENEW_MIN_LEASE = 600  # forward --keep's default lease
RENEW_BUDGET_S = 10.0


def owned_mapping_to_renew(report: Report, cfg: c.WatchConfig) -> tuple[str, int, str] | None:
    """(gateway, external port, description) of a leased mapping of ours that would lapse
    before the next round: to this PC, for our port, described as reverseprobe's."""
    router = report.probes.get("router")
    if not cfg.upnp or not isinstance(router, RouterResult) or router.status is not Status.OK:
        return None
    m = router.mapping
    if m is None or not m.lease or not router.gateway:
        return None
    if m.internal_client != router.lan_address or m.internal_port != cfg.port:
        return None
    if not m.description.startswith("reverseprobe"):
        return None  # somebody else's mapping: never touched
    if m.lease > 2 * cfg.interval + 30:
        return None  # lasts until after the next round
    return router.gateway, m.external_port, m.description


def renew(
    cfg: c.WatchConfig, gateway: str, external_port: int, description: str, env: Environment
) -> str:
    """Renew through forward's safe pass (it re-adds only a mapping that is still ours)."""
    from reverseprobe.commands import forward
    from reverseprobe.portmap.state import NonceStore, state_dir

    fcfg = c.ForwardConfig(
        mode=c.ForwardMode.UPNP,
        port=cfg.port,
        external_port=external_port,
        lease=max(RENEW_MIN_LEASE, int(3 * cfg.interval)),
        description=description,
        aet=cfg.aet,
        timeout=RENEW_BUDGET_S,
    )
    req = forward.make_request(fcfg)
    store = NonceStore(state_dir(env.environ))
    _router, m = forward.one_pass(fcfg, req, gateway, Deadline.after(RENEW_BUDGET_S), store)
    if m.status is Status.OK:
        return f"renewed the router's mapping for TCP {external_port} (lease {fcfg.lease} s)"
    return f"could not renew the router's mapping for TCP {external_port}: {m.reason}"


# --- the loop ----------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _emit(env: Environment, cfg: c.WatchConfig, event: dict[str, Any], line: str) -> None:
    from reverseprobe.textsafe import printable

    if cfg.json:
        env.stdout.write(json.dumps(event, sort_keys=False) + "\n")
    else:
        env.stdout.write(f"{event['time']} {printable(line)}\n")
    env.stdout.flush()


def check_config(cfg: c.WatchConfig) -> c.CheckConfig:
    return c.CheckConfig(
        port=cfg.port,
        aet=cfg.aet,
        reflector=cfg.reflector,
        ip_services=cfg.ip_services,
        upnp=cfg.upnp,
        public_ip=cfg.public_ip,
        timeout=cfg.timeout,
    )


def rounds(
    cfg: c.WatchConfig,
    check: Callable[[c.CheckConfig], Report] | None = None,
    on_report: Callable[[Report], None] | None = None,
) -> Iterator[tuple[Snapshot, list[Change], str]]:
    """One (snapshot, changes, why) per round: why is "start", "interval" or "network"."""
    from reverseprobe.commands.check import run as run_check

    ccfg = check_config(cfg)
    check = check or (lambda k: run_check(k, deadline=Deadline.after(k.timeout)))
    waiter = NetlinkWaiter()
    prev: Snapshot | None = None
    why = "start"
    try:
        n = 0
        while cfg.count == 0 or n < cfg.count:
            n += 1
            report = check(ccfg)
            if on_report is not None:
                on_report(report)
            snap = snapshot(report)
            found = changes(prev, snap, cfg) if prev is not None else []
            prev = _merge(prev, snap)
            yield snap, found, why
            if cfg.count and n >= cfg.count:
                break
            why = "network" if waiter.wait(cfg.interval) else "interval"
    finally:
        waiter.close()


def _merge(prev: Snapshot | None, snap: Snapshot) -> Snapshot:
    """Keep the last measured value where this round measured nothing (a flaky IP service
    must not make the next good answer look like a change)."""
    if prev is None:
        return snap
    keep = {
        k: getattr(snap, k) if getattr(snap, k) is not None else getattr(prev, k)
        for k in ("public_ip", "mapping", "lan", "listener", "inbound", "reachable")
    }
    return Snapshot(**keep, durations=snap.durations)


def watch(cfg: c.WatchConfig, env: Environment) -> ExitStatus:
    """Run until --count rounds (0: forever), a change with --exit-on-change, or Ctrl-C."""
    metrics = Metrics(cfg.metrics_host, cfg.metrics_port) if cfg.metrics_port else None
    try:
        if metrics is not None:
            _emit(
                env,
                cfg,
                {
                    "time": _now(),
                    "event": "metrics",
                    "listen": f"{cfg.metrics_host}:{cfg.metrics_port}",
                },
                f"metrics on http://{cfg.metrics_host}:{cfg.metrics_port}/metrics",
            )

        def renew_if_due(report: Report) -> None:
            due = owned_mapping_to_renew(report, cfg)
            if due is not None:
                line = renew(cfg, *due, env)
                _emit(env, cfg, {"time": _now(), "event": "renewed", "message": line}, line)

        for snap, found, why in rounds(cfg, on_report=renew_if_due):
            if metrics is not None:
                metrics.update(snap, cfg.port, found)
            _emit(
                env,
                cfg,
                {
                    "time": _now(),
                    "event": "check",
                    "trigger": why,
                    "public_ip": snap.public_ip,
                    "mapping": snap.mapping,
                    "listener": list(snap.listener) if snap.listener is not None else None,
                    "inbound": snap.inbound,
                },
                f"checked ({why}): public {snap.public_ip or 'unknown'}, "
                f"mapping {snap.mapping if snap.mapping is not None else 'not read'}, "
                f"listener {', '.join(snap.listener) if snap.listener else 'none'}, "
                f"dial-back {snap.inbound or 'not tested'}",
            )
            for ch in found:
                _emit(
                    env,
                    cfg,
                    {
                        "time": _now(),
                        "event": "change",
                        "what": ch.what,
                        "old": ch.old,
                        "new": ch.new,
                        "message": ch.message,
                        "pacs_entry": ch.pacs_entry,
                    },
                    f"CHANGED {ch.what}: {ch.message}",
                )
            if found and cfg.exit_on_change:
                return ExitStatus.FAIL
    finally:
        if metrics is not None:
            metrics.close()
    return ExitStatus.OK
