"""The option groups several commands share (--json/--timeout/--debug, --port, --aet,
--reflector, --ip-service, --strict, DICOM TLS, the preflight's contexts), and the parser
whose errors become one line and exit 2."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from reverseprobe import config as c
from reverseprobe.config.validate import (
    parse_aet,
    parse_context,
    parse_port,
    parse_timeout,
    parse_url,
)

PROG = "reverseprobe"


class UsageError(Exception):
    """Bad usage detected by argparse; str() is the one-line message."""


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so that main() prints one line (exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")


def typed(fn: Callable[..., Any], **kw: Any) -> Callable[[str], Any]:
    """Wrap a config validator as an argparse type; BadInput keeps its own message."""

    def conv(value: str) -> Any:
        try:
            return fn(value, **kw)
        except c.BadInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    conv.__name__ = kw.get("what", fn.__name__)
    return conv


def add_common(p: argparse.ArgumentParser, timeout: float, what: str | None = None) -> None:
    """--json, --timeout and --debug, which every command has."""
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument(
        "--timeout",
        type=typed(parse_timeout),
        default=timeout,
        metavar="SECONDS",
        help=f"{what or 'global deadline for the whole command'} (default {timeout:g})",
    )
    p.add_argument("--debug", action="store_true", help="show library logs and tracebacks")
    p.add_argument(
        "--verbose", action="store_true", help="add the per-probe timing table to the report"
    )


def add_port(p: argparse.ArgumentParser, help_: str) -> None:
    p.add_argument(
        "--port",
        type=typed(parse_port),
        default=c.DEFAULT_PORT,
        help=f"{help_} (default {c.DEFAULT_PORT})",
    )


def add_aet(p: argparse.ArgumentParser, help_: str, *, required: bool = False) -> None:
    p.add_argument("--aet", type=typed(parse_aet), required=required, help=help_)


def add_reflector(p: argparse.ArgumentParser, help_: str) -> None:
    p.add_argument(
        "--reflector",
        type=typed(parse_url, what="reflector URL"),
        metavar="URL",
        help=f"{help_} (env {c.ENV_REFLECTOR})",
    )


def add_ip_service(p: argparse.ArgumentParser, *, no_public_ip: bool = True) -> None:
    p.add_argument(
        "--ip-service",
        type=typed(parse_url, what="IP service URL"),
        action="append",
        metavar="URL",
        dest="ip_services",
        help=f"public-IP service, repeatable (env {c.ENV_IP_SERVICES})",
    )
    if no_public_ip:
        p.add_argument("--no-public-ip", action="store_true", help="do not ask public-IP services")


def add_strict(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")


def add_command(
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


def add_tls_options(p: Any) -> None:
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


def add_preflight_contexts(p: argparse.ArgumentParser, who: str, default: str) -> None:
    """The receiver preflight's contexts (issue 11), for check and move-test alike."""
    p.add_argument(
        "--context",
        dest="contexts",
        action="append",
        metavar="SOP=TS",
        type=typed(parse_context),
        help=f"{who}: a SOP class and transfer syntax to propose to the receiver on --port "
        f"(repeatable{default})",
    )
    p.add_argument(
        "--contexts-from",
        metavar="FILE",
        help=f"{who}: propose what the PACS proposed in a recorded move (an earlier "
        "move-test --receiver own --json report)",
    )
