"""The parser: one subcommand per command, each with its description, example and options."""

from __future__ import annotations

import argparse
from typing import Any

from reverseprobe import __version__
from reverseprobe import config as c
from reverseprobe.cli.options import (
    PROG,
    Parser,
    add_aet,
    add_command,
    add_common,
    add_ip_service,
    add_port,
    add_preflight_contexts,
    add_reflector,
    add_strict,
    add_tls_options,
    typed,
)
from reverseprobe.config.forward import parse_lease
from reverseprobe.config.validate import (
    parse_aet,
    parse_cidr,
    parse_count,
    parse_host_port,
    parse_pacs_entry,
    parse_port,
    parse_port_ranges,
    parse_positive,
    parse_study_uid,
    parse_timeout,
)


def _check_parser(sub: Any) -> None:
    ck = add_command(
        sub,
        "check",
        "diagnose whether a PACS can connect back to this PC",
        "Look at this PC and its network (listener, interfaces, public address, router,\n"
        "firewall, echo-back) and say why a C-MOVE from a PACS cannot reach it.",
        "reverseprobe check --port 11112 --aet MYSCU --reflector https://reflector.example:8470",
    )
    add_port(ck, "the DICOM receive port")
    add_aet(ck, "this SCU's AE title (the Move Destination)")
    add_reflector(ck, "echo-back service")
    add_ip_service(ck)
    ck.add_argument("--no-upnp", action="store_true", help="do not ask the router (UPnP/NAT-PMP)")
    ck.add_argument("--expect-process", metavar="NAME", help="the program that must own the port")
    add_tls_options(ck)
    ck.add_argument(
        "--require-listener", action="store_true", help="nothing listening on the port is a failure"
    )
    ck.add_argument(
        "--pacs-entry",
        metavar="AET@HOST:PORT",
        type=typed(parse_pacs_entry),
        help="the entry the PACS administrator already made for this SCU, to compare",
    )
    ck.add_argument(
        "--pacs",
        type=typed(parse_host_port, what="--pacs HOST:PORT"),
        metavar="HOST:PORT",
        help="receiver preflight: the PACS whose IMAGE-level C-FIND tells what it will send "
        "(with --pacs-aet); its studies are only read",
    )
    ck.add_argument(
        "--pacs-aet",
        type=typed(parse_aet, what="PACS AE title"),
        help="receiver preflight: the PACS's AE title (with --pacs)",
    )
    add_preflight_contexts(ck, "receiver preflight", "")
    add_strict(ck)
    add_common(ck, c.DEFAULT_CHECK_TIMEOUT)


def _forward_parser(sub: Any) -> None:
    fw = add_command(
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
    add_port(fw, "internal port on this PC")
    fw.add_argument(
        "--external-port",
        type=typed(parse_port, what="external port"),
        help="port on the router (default: --port)",
    )
    fw.add_argument(
        "--lease",
        type=typed(parse_lease),
        default=None,
        metavar="SECONDS",
        help=f"mapping lifetime; 0 = permanent (default {c.DEFAULT_LEASE}, "
        f"{c.DEFAULT_KEEP_LEASE} with --keep, which renews it)",
    )
    fw.add_argument("--description", help="mapping description (default names reverseprobe)")
    add_aet(fw, "this SCU's AE title (for the PACS entry)")
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
    add_reflector(fw, "echo-back service for --verify")
    add_ip_service(fw, no_public_ip=False)
    add_common(fw, c.DEFAULT_FORWARD_TIMEOUT)


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


def _move_test_parser(sub: Any) -> None:
    mv = add_command(
        sub,
        "move-test",
        "end-to-end C-ECHO, C-FIND, C-MOVE against a PACS",
        "C-ECHO the PACS, C-FIND a study, C-MOVE it to our own Storage SCP on --port and\n"
        "count what arrives (and optionally C-GET it). Nothing is stored on the PACS.",
        "reverseprobe move-test --pacs pacs.example:104 --pacs-aet PACS --aet MYSCU",
    )
    mv.add_argument(
        "--pacs",
        type=typed(parse_host_port, what="--pacs HOST:PORT"),
        required=True,
        metavar="HOST:PORT",
        help="the PACS's DICOM address ([IPv6]:PORT for IPv6)",
    )
    mv.add_argument(
        "--pacs-aet",
        type=typed(parse_aet, what="PACS AE title"),
        required=True,
        help="the PACS's AE title (the Called AE)",
    )
    add_aet(mv, "this SCU's AE title, the Move Destination", required=True)
    add_port(mv, "port our Storage SCP listens on")
    mv.add_argument(
        "--study",
        metavar="UID",
        type=typed(parse_study_uid),
        help="Study Instance UID (default: the first study the PACS lists)",
    )
    mv.add_argument(
        "--receiver",
        choices=c.RECEIVER_MODES,
        default="auto",
        help="own: our Storage SCP receives on --port; running: your receiver already listens "
        "there and move-test observes it; auto (default): own when --port is free, else running",
    )
    add_reflector(mv, "echo-back service: measure the way in to --port before the move")
    add_tls_options(mv)  # issue 15: the association to the PACS and our receiver both use TLS
    add_preflight_contexts(
        mv, "running receiver", "; default: what the PACS's IMAGE-level C-FIND says it holds"
    )
    mv.add_argument("--try-cget", action="store_true", help="also retrieve the study with C-GET")
    mv.add_argument("--save", metavar="DIR", help="keep received images in DIR")
    mv.add_argument(
        "--grace",
        type=typed(parse_timeout, what="grace period"),
        default=None,
        metavar="SECONDS",
        help=f"keep listening after the final response (default {c.DEFAULT_GRACE:g}, less "
        "when --timeout is short)",
    )
    add_ip_service(mv)
    add_strict(mv)
    add_common(mv, c.DEFAULT_MOVE_TIMEOUT)


def _reflector_parser(sub: Any) -> None:
    rf = add_command(
        sub,
        "reflector",
        "run the echo-back service (outside the SCU's network)",
        "Serve the echo-back API: on request, dial the caller's public address back on its\n"
        "DICOM port and say what answered. Run it outside the network under test.",
        "reverseprobe reflector --listen 0.0.0.0:8470 --token-file /etc/reverseprobe/token",
    )
    rf.add_argument(
        "--listen",
        type=typed(parse_host_port, what="--listen HOST:PORT"),
        action="append",
        default=None,
        metavar="HOST:PORT",
        help="bind address, repeatable: e.g. 0.0.0.0:8470 and [::]:8470 (default 127.0.0.1:8470)",
    )
    rf.add_argument(
        "--trust-proxy",
        type=typed(parse_cidr),
        action="append",
        default=[],
        metavar="CIDR",
        help="proxies whose X-Forwarded-For is believed",
    )
    rf.add_argument(
        "--allow-ports",
        type=typed(parse_port_ranges, what="--allow-ports"),
        default=parse_port_ranges(c.DEFAULT_ALLOW_PORTS),
        metavar="LIST",
        help=f"ports it may dial (default {c.DEFAULT_ALLOW_PORTS})",
    )
    rf.add_argument(
        "--rate",
        type=typed(parse_positive, what="--rate"),
        default=12.0,
        metavar="PER_MINUTE",
        help="probes per source address per minute (default 12)",
    )
    for flag, default, help_ in (
        ("--burst", 4, "token-bucket size per source (default 4)"),
        ("--max-concurrent", 64, "global cap on concurrent dial-backs (default 64)"),
        ("--max-per-source", 2, "probe requests in progress per source address (default 2)"),
    ):
        rf.add_argument(flag, type=typed(parse_count, what=flag), default=default, help=help_)
    rf.add_argument(
        "--allow-loopback",
        action="store_true",
        help="also dial loopback addresses (for tests and labs only; never on a public reflector)",
    )
    rf.add_argument("--token-file", metavar="FILE", help="require this bearer token")
    rf.add_argument(
        "--connect-timeout",
        type=typed(parse_timeout, what="--connect-timeout"),
        default=3.0,
        metavar="SECONDS",
        help="TCP connect budget of one dial-back (default 3, at most --timeout)",
    )
    add_common(rf, c.DEFAULT_REFLECTOR_TIMEOUT, "budget of one dial-back, connect to verdict")


def _checklist_parser(sub: Any) -> None:
    cl = add_command(
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
    add_strict(cl)
    add_common(cl, c.DEFAULT_CHECKLIST_TIMEOUT)


def _watch_parser(sub: Any) -> None:
    wp = add_command(
        sub,
        "watch",
        "re-check every --interval and report what changed",
        "Run check's probes again and again (on Linux also when an address or route\n"
        "changes) and say what changed: the public address (the PACS entry to give), the\n"
        "router's mapping, the listener, the dial-back.",
        "reverseprobe watch --port 11112 --aet MYSCU --interval 300 --metrics 9464",
    )
    add_port(wp, "the DICOM receive port")
    add_aet(wp, "this SCU's AE title (for the PACS entry)")
    add_reflector(wp, "echo-back service (the dial-back each round)")
    add_ip_service(wp)
    wp.add_argument("--no-upnp", action="store_true", help="do not ask the router (UPnP/NAT-PMP)")
    wp.add_argument(
        "--interval",
        type=typed(parse_positive, what="--interval"),
        default=c.DEFAULT_WATCH_INTERVAL,
        metavar="SECONDS",
        help=f"seconds between rounds (default {c.DEFAULT_WATCH_INTERVAL:g})",
    )
    wp.add_argument(
        "--count",
        type=typed(parse_count, what="--count"),
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
    add_common(wp, c.DEFAULT_CHECK_TIMEOUT, "each round's check")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Why can't a C-MOVE from the PACS reach this workstation? Find out, and fix "
        "what can be fixed.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
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
