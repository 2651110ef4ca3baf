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
from reverseprobe.environment import Environment
from reverseprobe.exitcodes import ExitStatus, exit_status

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


def _common(p: argparse.ArgumentParser, timeout: float) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument(
        "--timeout",
        type=_t(c.parse_timeout),
        default=timeout,
        metavar="SECONDS",
        help=f"global deadline for the whole command (default {timeout:g})",
    )
    p.add_argument("--debug", action="store_true", help="show library logs and tracebacks")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Why can't a C-MOVE from the PACS reach this workstation? Find out, and fix "
        "what can be fixed.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    ck = sub.add_parser("check", help="diagnose whether a PACS can connect back to this PC")
    ck.add_argument(
        "--port",
        type=_t(c.parse_port),
        default=c.DEFAULT_PORT,
        help="the DICOM receive port (default 11112)",
    )
    ck.add_argument(
        "--aet", type=_t(c.parse_aet), help="this SCU's AE title (the Move Destination)"
    )
    ck.add_argument(
        "--reflector",
        type=_t(c.parse_url, what="reflector URL"),
        metavar="URL",
        help=f"echo-back service (env {c.ENV_REFLECTOR})",
    )
    ck.add_argument(
        "--ip-service",
        type=_t(c.parse_url, what="IP service URL"),
        action="append",
        metavar="URL",
        dest="ip_services",
        help=f"public-IP service, repeatable (env {c.ENV_IP_SERVICES})",
    )
    ck.add_argument("--no-upnp", action="store_true", help="do not ask the router (UPnP/NAT-PMP)")
    ck.add_argument("--no-public-ip", action="store_true", help="do not ask public-IP services")
    ck.add_argument("--expect-process", metavar="NAME", help="the program that must own the port")
    ck.add_argument(
        "--require-listener", action="store_true", help="nothing listening on the port is a failure"
    )
    ck.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    _common(ck, c.DEFAULT_CHECK_TIMEOUT)

    fw = sub.add_parser("forward", help="open the port on the router (UPnP IGD, NAT-PMP/PCP)")
    mode = fw.add_mutually_exclusive_group()
    mode.add_argument(
        "--upnp", dest="mode", action="store_const", const="upnp", help="UPnP IGD (default)"
    )
    mode.add_argument(
        "--natpmp", dest="mode", action="store_const", const="natpmp", help="NAT-PMP / PCP"
    )
    mode.add_argument(
        "--auto", dest="mode", action="store_const", const="auto", help="UPnP, then NAT-PMP/PCP"
    )
    fw.add_argument(
        "--port",
        type=_t(c.parse_port),
        default=c.DEFAULT_PORT,
        help="internal port on this PC (default 11112)",
    )
    fw.add_argument(
        "--external-port",
        type=_t(c.parse_port, what="external port"),
        help="port on the router (default: --port)",
    )
    fw.add_argument(
        "--lease",
        type=_t(_parse_lease),
        default=0,
        metavar="SECONDS",
        help="mapping lifetime; 0 = permanent (default)",
    )
    fw.add_argument("--description", help="mapping description (default names reverseprobe)")
    fw.add_argument("--aet", type=_t(c.parse_aet), help="this SCU's AE title (for the PACS entry)")
    act = fw.add_mutually_exclusive_group()
    act.add_argument(
        "--list",
        dest="action",
        action="store_const",
        const="list",
        help="list the router's mappings",
    )
    act.add_argument(
        "--remove",
        dest="action",
        action="store_const",
        const="remove",
        help="remove the mapping (only one pointing to this PC unless --force)",
    )
    fw.add_argument("--force", action="store_true", help="touch a mapping held by another host")
    fw.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    fw.add_argument(
        "--keep",
        action="store_true",
        help="hold the mapping, renewing it, until Ctrl-C (which removes a mapping this run "
        "made); lease 600 s unless --lease",
    )
    fw.add_argument("--verify", action="store_true", help="echo-back probe after mapping")
    fw.add_argument(
        "--reflector",
        type=_t(c.parse_url, what="reflector URL"),
        metavar="URL",
        help=f"echo-back service for --verify (env {c.ENV_REFLECTOR})",
    )
    fw.add_argument(
        "--ip-service",
        type=_t(c.parse_url, what="IP service URL"),
        action="append",
        metavar="URL",
        dest="ip_services",
        help="public-IP service, repeatable",
    )
    _common(fw, 10.0)

    mv = sub.add_parser("move-test", help="end-to-end C-ECHO, C-FIND, C-MOVE against a PACS")
    mv.add_argument(
        "--pacs",
        type=_t(c.parse_host_port, what="--pacs HOST:PORT"),
        required=True,
        metavar="HOST:PORT",
    )
    mv.add_argument("--pacs-aet", type=_t(c.parse_aet, what="PACS AE title"), required=True)
    mv.add_argument(
        "--aet",
        type=_t(c.parse_aet),
        required=True,
        help="this SCU's AE title, the Move Destination",
    )
    mv.add_argument(
        "--port",
        type=_t(c.parse_port),
        default=c.DEFAULT_PORT,
        help="port our Storage SCP listens on (default 11112)",
    )
    mv.add_argument("--study", metavar="UID", type=_t(_parse_uid), help="Study Instance UID")
    mv.add_argument("--try-cget", action="store_true", help="also retrieve the study with C-GET")
    mv.add_argument("--save", metavar="DIR", help="keep received images in DIR")
    mv.add_argument(
        "--grace",
        type=_t(c.parse_timeout, what="grace period"),
        default=5.0,
        metavar="SECONDS",
        help="keep listening after the final response (default 5)",
    )
    mv.add_argument(
        "--ip-service",
        type=_t(c.parse_url, what="IP service URL"),
        action="append",
        metavar="URL",
        dest="ip_services",
        help="public-IP service, repeatable",
    )
    mv.add_argument("--no-public-ip", action="store_true", help="do not ask public-IP services")
    mv.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    _common(mv, 120.0)

    rf = sub.add_parser("reflector", help="run the echo-back service (outside the SCU's network)")
    rf.add_argument(
        "--listen",
        type=_t(c.parse_host_port, what="--listen HOST:PORT"),
        default=("127.0.0.1", 8470),
        metavar="HOST:PORT",
        help="bind address (default 127.0.0.1:8470)",
    )
    rf.add_argument(
        "--trust-proxy",
        type=_t(c.parse_cidr),
        action="append",
        default=[],
        metavar="CIDR",
        help="proxies whose X-Forwarded-For is believed",
    )
    rf.add_argument(
        "--allow-ports",
        type=_t(c.parse_port_ranges, what="--allow-ports"),
        default=c.parse_port_ranges(c.DEFAULT_ALLOW_PORTS),
        metavar="LIST",
        help=f"ports it may dial (default {c.DEFAULT_ALLOW_PORTS})",
    )
    rf.add_argument(
        "--rate",
        type=_t(_parse_positive, what="--rate"),
        default=12.0,
        metavar="PER_MINUTE",
        help="probes per source address per minute (default 12)",
    )
    rf.add_argument(
        "--burst",
        type=_t(_parse_count, what="--burst"),
        default=4,
        help="token-bucket size per source (default 4)",
    )
    rf.add_argument(
        "--max-concurrent",
        type=_t(_parse_count, what="--max-concurrent"),
        default=64,
        help="global cap on concurrent dial-backs (default 64)",
    )
    rf.add_argument(
        "--max-per-source",
        type=_t(_parse_count, what="--max-per-source"),
        default=2,
        help="probe requests in progress per source address (default 2)",
    )
    rf.add_argument(
        "--allow-loopback",
        action="store_true",
        help="also dial loopback addresses (for tests and labs only; never on a public reflector)",
    )
    rf.add_argument("--token-file", metavar="FILE", help="require this bearer token")
    rf.add_argument(
        "--connect-timeout",
        type=_t(c.parse_timeout, what="--connect-timeout"),
        default=3.0,
        metavar="SECONDS",
    )
    _common(rf, 8.0)

    cl = sub.add_parser("checklist", help="pre-deployment checklist from a site.toml")
    cl.add_argument("site", metavar="SITE.toml")
    cl.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=("text", "json", "junit", "html"),
        help="repeatable (default text)",
    )
    cl.add_argument(
        "--output",
        dest="outputs",
        action="append",
        default=[],
        metavar="FILE",
        help="one per --format, in order",
    )
    cl.add_argument(
        "--output-dir", metavar="DIR", help="write report.txt, report.json, report.xml, report.html"
    )
    cl.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    _common(cl, 600.0)
    return parser


def _parse_lease(value: str) -> int:
    try:
        n = c.parse_digits(value, what="lease")
    except c.BadInput:
        raise c.BadInput(f"invalid lease {value!r}: not a whole number of seconds") from None
    if not 0 <= n <= 2**31 - 1:
        raise c.BadInput(f"invalid lease {value!r}: must be 0 (permanent) to 2147483647")
    return n


def _parse_positive(value: str, what: str = "value") -> float:
    v = c.parse_decimal(value, what=what)
    if not 0 < v < float("inf"):
        raise c.BadInput(f"invalid {what} {value!r}: must be more than 0")
    return v


def _parse_count(value: str, what: str = "count") -> int:
    try:
        v = c.parse_digits(value, what=what)
    except c.BadInput:
        raise c.BadInput(f"invalid {what} {value!r}: not a whole number") from None
    if not 1 <= v <= 100_000:
        raise c.BadInput(f"invalid {what} {value!r}: must be 1-100000")
    return v


def _parse_uid(value: str) -> str:
    import re

    if len(value) > 64 or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", value):
        raise c.BadInput(f"invalid Study Instance UID {value!r}: digits and dots, at most 64")
    return value


def _env_list(env: Environment, name: str) -> tuple[str, ...] | None:
    items = c.split_env_list(env.environ.get(name))
    return tuple(c.parse_url(u, what=f"URL in {name}") for u in items) if items else None


def check_config(args: argparse.Namespace, env: Environment) -> c.CheckConfig:
    reflector = args.reflector
    if reflector is None and env.environ.get(c.ENV_REFLECTOR):
        reflector = c.parse_url(env.environ[c.ENV_REFLECTOR], what=f"{c.ENV_REFLECTOR}")
    services = tuple(args.ip_services) if args.ip_services else _env_list(env, c.ENV_IP_SERVICES)
    return c.CheckConfig(
        port=args.port,
        aet=args.aet,
        reflector=reflector,
        ip_services=services,
        upnp=not args.no_upnp,
        public_ip=not args.no_public_ip,
        expect_process=args.expect_process,
        require_listener=args.require_listener,
        strict=args.strict,
        timeout=args.timeout,
    )


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
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


def _dispatch(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if args.command == "check":
        from reverseprobe.commands.check import PROBE_NAMES, run_check
        from reverseprobe.runner import Deadline, process_age

        cfg = check_config(args, env)
        started = process_age() if args.whole_process else 0.0
        deadline = Deadline.for_command(cfg.timeout, already=started)
        return _run_and_render(
            lambda upd: run_check(cfg, on_update=upd, deadline=deadline),
            PROBE_NAMES,
            args,
            env,
            strict=cfg.strict,
        )
    if args.command == "forward":
        from reverseprobe.commands.forward import forward_config, run_forward

        fcfg = forward_config(args, env)
        return _run_and_render(
            lambda upd: run_forward(fcfg, env=env, on_update=upd), (), args, env, strict=False
        )
    if args.command == "move-test":
        from reverseprobe.commands.move_test import move_test_config, run_move_test

        mcfg = move_test_config(args, env)
        return _run_and_render(
            lambda upd: run_move_test(mcfg, on_update=upd),
            ("echo", "find", "move", "get"),
            args,
            env,
            strict=mcfg.strict,
        )
    if args.command == "reflector":
        from reverseprobe.reflector.server import reflector_config, serve

        return ExitStatus(serve(reflector_config(args, env), env=env))
    if args.command == "checklist":
        from reverseprobe.commands.checklist import checklist_config, run_checklist

        return run_checklist(checklist_config(args, env), env=env, json_out=args.json)
    raise UsageError(f"{PROG}: error: unknown command {args.command!r}")


def _run_and_render(
    run: Callable[[Any], Any],
    names: Sequence[str],
    args: argparse.Namespace,
    env: Environment,
    *,
    strict: bool,
) -> ExitStatus:
    from reverseprobe.render.json import render_json
    from reverseprobe.render.terminal import LiveView, render_text

    if env.live and names and not args.json:
        with LiveView(env.stderr, names, color=not env.no_color) as view:
            report = run(view.update)
    else:
        report = run(None)
    if args.json:
        env.stdout.write(render_json(report))
    else:
        env.stdout.write(render_text(report, color=env.color))
    env.stdout.flush()
    return exit_status(report.findings, strict=strict)


if __name__ == "__main__":
    raise SystemExit(main())
