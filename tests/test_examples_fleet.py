"""The fleet examples (issue 14) say what the code accepts: the commands in the systemd units
and the Windows task parse with reverseprobe's own parser, and the Ansible site-file template
renders to a site file the checklist reads."""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import jinja2

from reverseprobe.cli import build_parser
from reverseprobe.sitefile import parse_site

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def parses(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)  # SystemExit(2) on an option that does not exist
    assert args.command == argv[0]


def test_systemd_units_run_real_commands() -> None:
    for unit in ("reverseprobe-watch.service", "reverseprobe-check.service"):
        text = (EXAMPLES / "systemd" / unit).read_text()
        m = re.search(r"^ExecStart=(\S+) (.+)$", text, re.M)
        assert m and m.group(1).endswith("/reverseprobe"), unit
        parses(shlex.split(m.group(2)))
    timer = (EXAMPLES / "systemd" / "reverseprobe-check.timer").read_text()
    assert "OnCalendar=" in timer and "[Install]" in timer


def test_windows_task_runs_watch() -> None:
    root = ET.fromstring((EXAMPLES / "windows" / "reverseprobe-watch.xml").read_bytes())
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    args = root.find("t:Actions/t:Exec/t:Arguments", ns)
    assert args is not None and args.text
    parses(shlex.split(args.text))


def test_ansible_template_renders_a_valid_site_file() -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(EXAMPLES / "ansible"), undefined=jinja2.StrictUndefined
    )
    text = env.get_template("site.toml.j2").render(
        inventory_hostname="reading-room-2",
        rp_aet="RR2SCU",
        rp_port=104,
        rp_reflector="https://reflector.example.org:8470",
        rp_pacs=[
            {"name": "main archive", "host": "pacs.example.org", "port": 104, "aet": "ARCHIVE"},
            {"name": "tele", "host": "10.1.2.3", "port": 11112, "aet": "TELE",
             "receive_port": 11113},
        ],
    )  # fmt: skip
    site = parse_site(text, Path("site.toml"))
    assert (site.aet, site.port) == ("RR2SCU", 104)
    assert [p.receive_port for p in site.pacs] == [None, 11113]
    playbook = (EXAMPLES / "ansible" / "checklist.yml").read_text()
    for needed in ("checklist", "--output-dir", "report.json", "report.xml", "rc not in [0, 1]"):
        assert needed in playbook
