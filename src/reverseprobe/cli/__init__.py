"""argv -> Config -> run -> render -> exit code. The one place where exceptions end.

The parser is built in cli.parser from the shared option groups of cli.options. Imports of
pynetdicom, requests, miniupnpc and rich happen only inside the commands, so that
`reverseprobe --help` costs little more than starting Python.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from reverseprobe import config as c
from reverseprobe.cli.options import PROG, UsageError
from reverseprobe.cli.parser import build_parser
from reverseprobe.config.build import build_config
from reverseprobe.environment import Environment
from reverseprobe.exitcodes import CommandFailed, ExitStatus, exit_status

__all__ = ["PROG", "UsageError", "build_parser", "main"]


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
