"""argv -> Config -> run -> render -> exit code. The one place where exceptions end.

Imports of pynetdicom, requests, miniupnpc and rich happen only inside the commands, so that
`reverseprobe --help` costs little more than starting Python.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from reverseprobe import __version__
from reverseprobe import config as c
from reverseprobe.config.build import build_config
from reverseprobe.config.forward import parse_lease
from reverseprobe.config.validate import (
    parse_aet,
    parse_cidr,
    parse_context,
    parse_count,
    parse_host_port,
    parse_pacs_entry,
    parse_port,
    parse_port_ranges,
    parse_positive,
    parse_study_uid,
    parse_timeout,
    parse_url,
)
from reverseprobe.environment import Environment
from reverseprobe.exitcodes import CommandFailed, ExitStatus, exit_status

PROG = "reverseprobe"


class UsageError(Exception):
    """Bad usage detected by argparse; str() is the one-line message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")


def _t(fn: Callable[..., Any], **kw: Any) -> Callable[[str], Any]:
    """Wrap a config validator as an argparse type; BadInput keeps its own message."""

    def conv(value: str) -> Any:
        try:
            return fn(value, **kw)
        except c.BadInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    conv.__name__ = kw.get("what", fn.__name__)
    return conv


def _common(p: argparse.ArgumentParser, timeout: float, what: str | None = None) -> None:
    """--json, --timeout and --debug, which every command has."""
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument(
        "--timeout",
        type=_t(parse_timeout),
        default=timeout,
        metavar="SECONDS",
        help=f"{what or 'global deadline for the whole command'} (default {timeout:g})",
    )
    p.add_argument("--debug", action="store_true", help="show library logs and tracebacks")
    p.add_argument(
        "--verbose", action="store_true", help="add the per-probe timing table to the report"
    )


def _port(p: argparse.ArgumentParser, help_: str) -> None:
    p.add_argument(
        "--port",
        type=_t(parse_port),
        default=c.DEFAULT_PORT,
        help=f"{help_} (default {c.DEFAULT_PORT})",
    )


def _aet(p: argparse.ArgumentParser, help_: str, *, required: bool = False) -> None:
    p.add_argument("--aet", type=_t(parse_aet), required=required, help=help_)


def _reflector(p: argparse.ArgumentParser, help_: str) -> None:
    p.add_argument(
        "--reflector",
        type=_t(parse_url, what="reflector URL"),
        metavar="URL",
        help=f"{help_} (env {c.ENV_REFLECTOR})",
    )


def _ip_service(p: argparse.ArgumentParser, *, no_public_ip: bool = True) -> None:
    p.add_argument(
        "--ip-service",
        type=_t(parse_url, what="IP service URL"),
        action="append",
        metavar="URL",
        dest="ip_services",
        help=f"public-IP service, repeatable (env {c.ENV_IP_SERVICES})",
    )
    if no_public_ip:
        p.add_argument("--no-public-ip", action="store_true", help="do not ask public-IP services")


def _strict(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")


def _command(
    sub: Any, name: str, help_: str, description: str, example: str
) -> argparse.ArgumentParser:
    """A subcommand with a description and an example (shown by `COMMAND --help`)."""
    return sub.add_parser(  # type: ignore[no-any-return]
        name,
        help=help_,
        description=description,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _tls_options(p: Any) -> None:
    """DICOM over TLS (PS3.15 B.1), shared by the commands that associate (issue 15)."""
    g = p.add_argument_group("DICOM TLS (PS3.15 B.1)")
    g.add_argument("--tls", action="store_true", help="associate with TLS")
    g.add_argument("--tls-ca", metavar="PEM", help="CA certificate(s) to verify the peer with")
    g.add_argument("--tls-cert", metavar="PEM", help="our certificate (chain)")
    g.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    g.add_argument(
        "--tls-name",
        metavar="NAME",
        help="the name the PACS calls this PC by: the receiver's certificate must carry it "
        "(check --reflector; default: the public address the reflector saw)",
    )


def _check_parser(sub: Any) -> None:
    ck = _command(
        sub,
        "check",
        "diagnose whether a PACS can connect back to this PC",
        "Look at this PC and its network (listener, interfaces, public address, router,\n"
        "firewall, echo-back) and say why a C-MOVE from a PACS cannot reach it.",
        "reverseprobe check --port 11112 --aet MYSCU --reflector https://reflector.example:8470",
    )
    _port(ck, "the DICOM receive port")
    _aet(ck, "this SCU's AE title (the Move Destination)")
    _reflector(ck, "echo-back service")
    _ip_service(ck)
    ck.add_argument("--no-upnp", action="store_true", help="do not ask the router (UPnP/NAT-PMP)")
    ck.add_argument("--expect-process", metavar="NAME", help="the program that must own the port")
    _tls_options(ck)
    ck.add_argument(
        "--require-listener", action="store_true", help="nothing listening on the port is a failure"
    )
    ck.add_argument(
        "--pacs-entry",
        metavar="AET@HOST:PORT",
        type=_t(parse_pacs_entry),
        help="the entry the PACS administrator already made for this SCU, to compare",
    )
    ck.add_argument(
        "--pacs",
        type=_t(parse_host_port, what="--pacs HOST:PORT"),
        metavar="HOST:PORT",
        help="receiver preflight: the PACS whose IMAGE-level C-FIND tells what it will send "
        "(with --pacs-aet); its studies are only read",
    )
    ck.add_argument(
        "--pacs-aet",
        type=_t(parse_aet, what="PACS AE title"),
        help="receiver preflight: the PACS's AE title (with --pacs)",
    )
    _preflight_contexts(ck, "receiver preflight", "")
    _strict(ck)
    _common(ck, c.DEFAULT_CHECK_TIMEOUT)


def _forward_parser(sub: Any) -> None:
    fw = _command(
        sub,
        "forward",
        "open the port on the router (UPnP IGD, NAT-PMP/PCP)",
        "Ask the router to forward the DICOM port to this PC, list its mappings or remove\n"
        "one; never takes over a mapping held by another host unless --force.",
        "reverseprobe forward --port 11112 --aet MYSCU --keep",
    )
    mode = fw.add_mutually_exclusive_group()
    for const, help_ in (
        (c.ForwardMode.UPNP, "UPnP IGD (default)"),
        (c.ForwardMode.NATPMP, "NAT-PMP / PCP"),
        (c.ForwardMode.AUTO, "UPnP, then NAT-PMP/PCP"),
    ):
        mode.add_argument(f"--{const}", dest="mode", action="store_const", const=const, help=help_)
    _port(fw, "internal port on this PC")
    fw.add_argument(
        "--external-port",
        type=_t(parse_port, what="external port"),
        help="port on the router (default: --port)",
    )
    fw.add_argument(
        "--lease",
        type=_t(parse_lease),
        default=None,
        metavar="SECONDS",
        help=f"mapping lifetime; 0 = permanent (default {c.DEFAULT_LEASE}, "
        f"{c.DEFAULT_KEEP_LEASE} with --keep, which renews it)",
    )
    fw.add_argument("--description", help="mapping description (default names reverseprobe)")
    _aet(fw, "this SCU's AE title (for the PACS entry)")
    act = fw.add_mutually_exclusive_group()
    act.add_argument(
        "--list",
        dest="action",
        action="store_const",
        const=c.ForwardAction.LIST,
        help="list the router's mappings",
    )
    act.add_argument(
        "--remove",
        dest="action",
        action="store_const",
        const=c.ForwardAction.REMOVE,
        help="remove the mapping (only one pointing to this PC unless --force)",
    )
    fw.add_argument("--force", action="store_true", help="touch a mapping held by another host")
    fw.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    fw.add_argument(
        "--keep",
        action="store_true",
        help="hold the mapping, renewing it, until Ctrl-C (which removes a mapping this run "
        f"made); lease {c.DEFAULT_KEEP_LEASE} s unless --lease",
    )
    fw.add_argument("--verify", action="store_true", help="echo-back probe after mapping")
    _firewall_options(fw)
    _family_option(fw)
    _reflector(fw, "echo-back service for --verify")
    _ip_service(fw, no_public_ip=False)
    _common(fw, c.DEFAULT_FORWARD_TIMEOUT)


def _family_option(fw: argparse.ArgumentParser) -> None:
    """forward's --family (issue 15)."""
    fw.add_argument(
        "--family",
        choices=[str(f) for f in c.ForwardFamily],
        default=None,
        help="4: the IPv4 port mapping; 6: an IPv6 pinhole in the router's firewall for this "
        "PC's global IPv6 address (UPnP WANIPv6FirewallControl, PCP); both (default): each "
        "where it exists",
    )


def _firewall_options(fw: argparse.ArgumentParser) -> None:
    """forward's host-firewall options (issue 14)."""
    fw.add_argument(
        "--firewall",
        action="store_true",
        help="also open the port in this PC's firewall (alone: only there; with --upnp, "
        "--natpmp or --auto: router and PC); --remove takes out only what reverseprobe added",
    )
    fw.add_argument(
        "--from",
        dest="source",
        metavar="ADDRESS|CIDR",
        help="admit connections only from this source, the PACS's address: on the router one "
        "IPv4 address (UPnP NewRemoteHost; not NAT-PMP/PCP; a router that cannot is reported, "
        "not ignored); in this PC's firewall (--firewall) an address or network",
    )
    fw.add_argument(
        "--permanent",
        action="store_true",
        help="with --firewall on firewalld: the permanent configuration too (default: runtime)",
    )


def _preflight_contexts(p: argparse.ArgumentParser, who: str, default: str) -> None:
    """The receiver preflight's contexts (issue 11), for check and move-test alike."""
    p.add_argument(
        "--context",
        dest="contexts",
        action="append",
        metavar="SOP=TS",
        type=_t(parse_context),
        help=f"{who}: a SOP class and transfer syntax to propose to the receiver on --port "
        f"(repeatable{default})",
    )
    p.add_argument(
        "--contexts-from",
        metavar="FILE",
        help=f"{who}: propose what the PACS proposed in a recorded move (an earlier "
        "move-test --receiver own --json report)",
    )


def _move_test_parser(sub: Any) -> None:
    mv = _command(
        sub,
        "move-test",
        "end-to-end C-ECHO, C-FIND, C-MOVE against a PACS",
        "C-ECHO the PACS, C-FIND a study, C-MOVE it to our own Storage SCP on --port and\n"
        "count what arrives (and optionally C-GET it). Nothing is stored on the PACS.",
        "reverseprobe move-test --pacs pacs.example:104 --pacs-aet PACS --aet MYSCU",
    )
    mv.add_argument(
        "--pacs",
        type=_t(parse_host_port, what="--pacs HOST:PORT"),
        required=True,
        metavar="HOST:PORT",
        help="the PACS's DICOM address ([IPv6]:PORT for IPv6)",
    )
    mv.add_argument(
        "--pacs-aet",
        type=_t(parse_aet, what="PACS AE title"),
        required=True,
        help="the PACS's AE title (the Called AE)",
    )
    _aet(mv, "this SCU's AE title, the Move Destination", required=True)
    _port(mv, "port our Storage SCP listens on")
    mv.add_argument(
        "--study",
        metavar="UID",
        type=_t(parse_study_uid),
        help="Study Instance UID (default: the first study the PACS lists)",
    )
    mv.add_argument(
        "--receiver",
        choices=c.RECEIVER_MODES,
        default="auto",
        help="own: our Storage SCP receives on --port; running: your receiver already listens "
        "there and move-test observes it; auto (default): own when --port is free, else running",
    )
    _reflector(mv, "echo-back service: measure the way in to --port before the move")
    _tls_options(mv)  # issue 15: the association to the PACS and our receiver both use TLS
    _preflight_contexts(
        mv, "running receiver", "; default: what the PACS's IMAGE-level C-FIND says it holds"
    )
    mv.add_argument("--try-cget", action="store_true", help="also retrieve the study with C-GET")
    mv.add_argument("--save", metavar="DIR", help="keep received images in DIR")
    mv.add_argument(
        "--grace",
        type=_t(parse_timeout, what="grace period"),
        default=None,
        metavar="SECONDS",
        help=f"keep listening after the final response (default {c.DEFAULT_GRACE:g}, less "
        "when --timeout is short)",
    )
    _ip_service(mv)
    _strict(mv)
    _common(mv, c.DEFAULT_MOVE_TIMEOUT)


def _reflector_parser(sub: Any) -> None:
    rf = _command(
        sub,
        "reflector",
        "run the echo-back service (outside the SCU's network)",
        "Serve the echo-back API: on request, dial the caller's public address back on its\n"
        "DICOM port and say what answered. Run it outside the network under test.",
        "reverseprobe reflector --listen 0.0.0.0:8470 --token-file /etc/reverseprobe/token",
    )
    rf.add_argument(
        "--listen",
        type=_t(parse_host_port, what="--listen HOST:PORT"),
        action="append",
        default=None,
        metavar="HOST:PORT",
        help="bind address, repeatable: e.g. 0.0.0.0:8470 and [::]:8470 (default 127.0.0.1:8470)",
    )
    rf.add_argument(
        "--trust-proxy",
        type=_t(parse_cidr),
        action="append",
        default=[],
        metavar="CIDR",
        help="proxies whose X-Forwarded-For is believed",
    )
    rf.add_argument(
        "--allow-ports",
        type=_t(parse_port_ranges, what="--allow-ports"),
        default=parse_port_ranges(c.DEFAULT_ALLOW_PORTS),
        metavar="LIST",
        help=f"ports it may dial (default {c.DEFAULT_ALLOW_PORTS})",
    )
    rf.add_argument(
        "--rate",
        type=_t(parse_positive, what="--rate"),
        default=12.0,
        metavar="PER_MINUTE",
        help="probes per source address per minute (default 12)",
    )
    for flag, default, help_ in (
        ("--burst", 4, "token-bucket size per source (default 4)"),
        ("--max-concurrent", 64, "global cap on concurrent dial-backs (default 64)"),
        ("--max-per-source", 2, "probe requests in progress per source address (default 2)"),
    ):
        rf.add_argument(flag, type=_t(parse_count, what=flag), default=default, help=help_)
    rf.add_argument(
        "--allow-loopback",
        action="store_true",
        help="also dial loopback addresses (for tests and labs only; never on a public reflector)",
    )
    rf.add_argument("--token-file", metavar="FILE", help="require this bearer token")
    rf.add_argument(
        "--connect-timeout",
        type=_t(parse_timeout, what="--connect-timeout"),
        default=3.0,
        metavar="SECONDS",
        help="TCP connect budget of one dial-back (default 3, at most --timeout)",
    )
    _common(rf, c.DEFAULT_REFLECTOR_TIMEOUT, "budget of one dial-back, connect to verdict")


def _checklist_parser(sub: Any) -> None:
    cl = _command(
        sub,
        "checklist",
        "pre-deployment checklist from a site.toml",
        "Run `check` once and `move-test` for each PACS of a site file, one after another\n"
        "under one --timeout, and write the reports (text, JSON, JUnit, HTML).",
        "reverseprobe checklist site.toml --output-dir reports/",
    )
    cl.add_argument("site", metavar="SITE.toml", help="the site file (docs/reference.md)")
    cl.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=tuple(f.value for f in c.ReportFormat.__members__.values()),
        help="repeatable (default text)",
    )
    cl.add_argument(
        "--output",
        dest="outputs",
        action="append",
        default=[],
        metavar="FILE",
        help="one per --format, in order ('-' = stdout)",
    )
    cl.add_argument(
        "--output-dir", metavar="DIR", help="write report.txt, report.json, report.xml, report.html"
    )
    _strict(cl)
    _common(cl, c.DEFAULT_CHECKLIST_TIMEOUT)


def _watch_parser(sub: Any) -> None:
    wp = _command(
        sub,
        "watch",
        "re-check every --interval and report what changed",
        "Run check's probes again and again (on Linux also when an address or route\n"
        "changes) and say what changed: the public address (the PACS entry to give), the\n"
        "router's mapping, the listener, the dial-back.",
        "reverseprobe watch --port 11112 --aet MYSCU --interval 300 --metrics 9464",
    )
    _port(wp, "the DICOM receive port")
    _aet(wp, "this SCU's AE title (for the PACS entry)")
    _reflector(wp, "echo-back service (the dial-back each round)")
    _ip_service(wp)
    wp.add_argument("--no-upnp", action="store_true", help="do not ask the router (UPnP/NAT-PMP)")
    wp.add_argument(
        "--interval",
        type=_t(parse_positive, what="--interval"),
        default=c.DEFAULT_WATCH_INTERVAL,
        metavar="SECONDS",
        help=f"seconds between rounds (default {c.DEFAULT_WATCH_INTERVAL:g})",
    )
    wp.add_argument(
        "--count",
        type=_t(parse_count, what="--count"),
        default=0,
        metavar="N",
        help="stop after N rounds (default: until stopped)",
    )
    wp.add_argument(
        "--exit-on-change",
        action="store_true",
        help="exit 1 at the first change (for a supervisor or a timer)",
    )
    wp.add_argument(
        "--metrics",
        metavar="[HOST:]PORT",
        help="serve Prometheus metrics on /metrics (host defaults to 127.0.0.1)",
    )
    _common(wp, c.DEFAULT_CHECK_TIMEOUT, "each round's check")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Why can't a C-MOVE from the PACS reach this workstation? Find out, and fix "
        "what can be fixed.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in (
        _check_parser,
        _forward_parser,
        _move_test_parser,
        _reflector_parser,
        _checklist_parser,
        _watch_parser,
    ):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    """argv -> exit code. A real invocation (argv None) then ends the process at once."""
    code = _main(argv, env)
    if argv is None and not _other_threads_must_finish():
        _exit_now(code)
    return code


def _other_threads_must_finish() -> bool:
    """A live non-daemon thread: the interpreter's own exit would wait for it, so do we."""
    import threading

    me = threading.current_thread()
    return any(t is not me and not t.daemon and t.is_alive() for t in threading.enumerate())


def _exit_now(code: int) -> NoReturn:
    """Exit without the interpreter's teardown: freeing pydicom's and pynetdicom's ~500
    modules takes 70-200 ms after the report is out (bench/profile_check.py). What exit must
    still do is done first: the atexit handlers in their order (our SCPs' stop, logging's
    flush), then the standard streams flushed. Daemon threads end as they would anyway."""
    import atexit
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing left to say
            stream.flush()
    os._exit(code)


def _main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:  # noqa: PLR0911 - the one place exceptions end: one return per exit code
    env = env or Environment()
    # A real invocation counts its interpreter start-up against --timeout; in-process callers
    # (tests, the checklist) pass argv and start the clock now.
    whole_process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        with contextlib.redirect_stdout(env.stdout):  # --help and --version
            args = build_parser().parse_args(argv)
        args.whole_process = whole_process
        if not args.command:
            build_parser().print_help(env.stdout)
            return ExitStatus.USAGE
        from reverseprobe.dicom.echo import quiet_pynetdicom

        quiet_pynetdicom(debug=args.debug)
        return int(_dispatch(args, env))
    except UsageError as exc:
        print(str(exc).splitlines()[0], file=env.stderr)
        return ExitStatus.USAGE
    except c.BadInput as exc:
        print(f"{PROG}: error: {exc}", file=env.stderr)
        return ExitStatus.USAGE
    except CommandFailed as exc:
        print(f"{PROG}: error: {exc}", file=env.stderr)
        return ExitStatus.FAIL
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=env.stderr)
        return ExitStatus.INTERRUPTED
    except SystemExit as exc:  # argparse --help / --version
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    except Exception as exc:
        if debug:
            raise
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {exc} (run with --debug)",
            file=env.stderr,
        )
        return ExitStatus.FAIL


_COMMANDS = {
    "check": "reverseprobe.commands.check",
    "forward": "reverseprobe.commands.forward",
    "move-test": "reverseprobe.commands.move_test",
    "checklist": "reverseprobe.commands.checklist",
}


def _dispatch(args: argparse.Namespace, env: Environment) -> ExitStatus:
    """Config -> the command's run -> Report -> render -> exit code, for every command."""
    import importlib

    from reverseprobe.runner import Deadline, Interrupted, process_age

    cfg = build_config(args, env.environ)
    if isinstance(cfg, c.ReflectorConfig):
        from reverseprobe.reflector.server import serve

        serve(cfg, env=env)  # until SIGINT/SIGTERM; CommandFailed when it cannot listen
        return ExitStatus.OK
    if isinstance(cfg, c.WatchConfig):
        from reverseprobe.commands.watch import watch

        return watch(cfg, env)  # rounds of check, each under its own deadline
    module = importlib.import_module(_COMMANDS[args.command])
    started = process_age() if args.whole_process else 0.0
    deadline = Deadline.for_command(cfg.timeout, already=started)
    if isinstance(cfg, c.ChecklistConfig):
        names: tuple[str, ...] = module.step_names(cfg)
    else:
        names = module.plan(cfg, deadline.remaining()).names
    try:
        report = _run_live(
            lambda upd: module.run(cfg, on_update=upd, deadline=deadline), names, args, env
        )
    except Interrupted as exc:
        if exc.report is None:
            raise
        _render(exc.report, cfg, args, env)
        print(f"{PROG}: interrupted", file=env.stderr)
        return ExitStatus.INTERRUPTED
    _render(report, cfg, args, env)
    return exit_status(report.findings, strict=bool(getattr(cfg, "strict", False)))


def _run_live(
    run: Callable[[Any], Any], names: Sequence[str], args: argparse.Namespace, env: Environment
) -> Any:
    """Run with the live progress view on a terminal (stderr), without it otherwise."""
    if env.live and names and not args.json:
        from reverseprobe.render.terminal import LiveView

        with LiveView(env.stderr, names, color=not env.no_color) as view:
            return run(view.update)
    return run(None)


def _render(report: Any, cfg: c.Config, args: argparse.Namespace, env: Environment) -> None:
    """The Report on stdout (terminal text or --json); the checklist's files as asked."""
    if isinstance(cfg, c.ChecklistConfig):
        from reverseprobe.commands.checklist import emit

        emit(report, cfg, env, verbose=bool(getattr(args, "verbose", False)))
        return
    if args.json:  # each renderer imported only when used (terminal pulls the hop logic)
        from reverseprobe.render.json import render_json

        env.stdout.write(render_json(report))
    else:
        from reverseprobe.render.terminal import render_text

        verbose = bool(getattr(args, "verbose", False))
        env.stdout.write(render_text(report, color=env.color, verbose=verbose))
    env.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
