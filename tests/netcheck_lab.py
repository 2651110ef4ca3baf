"""Helpers for the router / public address / firewall lab tests: run `check` in the lab's PC,
read `upnpc -l` and `natpmpc` as independent witnesses, hold a DICOM listener."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from lab import HomeNet, LabProcess, Namespace

PORT = 11112


@dataclass
class CheckRun:
    rc: int
    doc: dict[str, Any]
    stderr: str

    @property
    def codes(self) -> dict[str, str]:
        return {f["code"]: f["severity"] for f in self.doc["findings"]}

    def finding(self, code: str) -> dict[str, Any]:
        return next(f for f in self.doc["findings"] if f["code"] == code)

    def probe(self, name: str) -> dict[str, Any]:
        return dict(self.doc["probes"][name])


def run_check(
    ns: Namespace,
    services: list[str],
    *,
    port: int = PORT,
    timeout: float = 5,
    extra: list[str] | None = None,
) -> CheckRun:
    """`reverseprobe check --json` in `ns` with lab IP services only (never the defaults)."""
    args = ["-m", "reverseprobe", "check", "--port", str(port), "--json", "--timeout", str(timeout)]
    for url in services:
        args += ["--ip-service", url]
    if not services:
        args.append("--no-public-ip")
    res = ns.python([*args, *(extra or [])], check=False, timeout=timeout + 20)
    assert res.returncode in (0, 1), f"check exited {res.returncode}: {res.stderr[-2000:]}"
    return CheckRun(res.returncode, json.loads(res.stdout), res.stderr)


def run_check_argv(port: int, services: list[str], timeout: float) -> list[str]:
    argv = [sys.executable, "-m", "reverseprobe", "check", "--port", str(port), "--json"]
    argv += ["--timeout", str(timeout)]
    for url in services:
        argv += ["--ip-service", url]
    return argv


_UPNPC_ROW = re.compile(
    r"^\s*\d+\s+(?P<proto>TCP|UDP)\s+(?P<eport>\d+)->(?P<iaddr>[\d.]+):(?P<iport>\d+)\s+'(?P<desc>[^']*)'"
)


def upnpc_mappings(
    net: HomeNet, ns: Namespace | None = None
) -> dict[tuple[str, int], tuple[str, int]]:
    """`upnpc -l`, the independent reader: {(proto, external port): (client, internal port)}."""
    out = net.upnpc(["-l"], ns=ns).stdout
    rows = {}
    for line in out.splitlines():
        m = _UPNPC_ROW.match(line)
        if m:
            rows[(m["proto"], int(m["eport"]))] = (m["iaddr"], int(m["iport"]))
    return rows


def upnpc_external_ip(net: HomeNet) -> str:
    """`upnpc -s`'s ExternalIPAddress line ('' when the router has none)."""
    out = net.upnpc(["-s"]).stdout
    m = re.search(r"^ExternalIPAddress = (\S*)", out, re.MULTILINE)
    return m.group(1) if m else ""


def natpmpc_external_ip(ns: Namespace, gateway: str) -> str | None:
    out = ns.run(["natpmpc", "-g", gateway], check=False, timeout=20).stdout
    m = re.search(r"Public IP address\s*:\s*(\S+)", out)
    return m.group(1) if m else None


def add_mapping(net: HomeNet, client_ns: Namespace, client_ip: str, port: int = PORT) -> None:
    """Map TCP `port` to `client_ip` with upnpc run on that client (miniupnpd's secure mode)."""
    res = net.upnpc(["-e", "lab", "-a", client_ip, str(port), str(port), "TCP"], ns=client_ns)
    assert res.returncode == 0 and "is redirected to" in res.stdout, res.stdout + res.stderr


def start_storescp(ns: Namespace, port: int = PORT) -> LabProcess:
    """dcmtk's storescp, a real DICOM receiver (absolute path: pynetdicom shadows it)."""
    proc = ns.popen(["/usr/bin/storescp", "--aetitle", "MYSCU", str(port)], name="storescp")
    ns.wait_tcp_listen(port, proc=proc)
    return proc


def connect(ns: Namespace, host: str, port: int = PORT, timeout: float = 1.0) -> str:
    """'open', 'refused' or 'timeout', as a real client in `ns` sees it."""
    code = (
        "import socket,sys\n"
        "try:\n"
        f"    socket.create_connection(({host!r}, {port}), timeout={timeout}).close()\n"
        "    print('open')\n"
        "except TimeoutError: print('timeout')\n"
        "except ConnectionRefusedError: print('refused')\n"
        "except OSError as e: print('error', e)\n"
    )
    return ns.run([sys.executable, "-c", code], timeout=timeout + 10).stdout.strip()


def shell_of_fix(fix: str) -> str:
    """The command a fix text names, without `sudo` and the explanation in parentheses."""
    cmd = fix.split(": ", 1)[-1].rstrip(".")
    cmd = re.sub(r"\s*\(.*\)\s*$", "", cmd)
    return cmd.replace("sudo ", "")


def sh(ns: Namespace, command: str) -> subprocess.CompletedProcess[str]:
    return ns.run(["sh", "-c", command], check=True)
