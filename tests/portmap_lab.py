"""Helpers for the port-mapping lab tests: run code or `reverseprobe forward` in a namespace,
and read what the router holds with independent tools (`upnpc -l`, `natpmpc`)."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from typing import Any

from lab import HomeNet, Namespace


def run_json(ns: Namespace, code: str, timeout: float = 60) -> Any:
    """Run Python `code` in `ns`; its last stdout line is JSON."""
    r = ns.python(["-c", code], check=False, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def forward(
    ns: Namespace, *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m reverseprobe forward ARGS` in `ns` (check=False)."""
    return ns.python(
        ["-m", "reverseprobe", "forward", *args], check=False, timeout=timeout, env=env
    )


def forward_json(ns: Namespace, *args: str, **kw: Any) -> tuple[int, dict[str, Any], str]:
    r = forward(ns, *args, "--json", **kw)
    try:
        doc = json.loads(r.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON (exit {r.returncode}):\n{r.stdout}\n{r.stderr}") from exc
    return r.returncode, doc, r.stderr


def codes(doc: dict[str, Any]) -> set[str]:
    return {f["code"] for f in doc["findings"]}


@dataclass(frozen=True)
class Held:
    """One line of `upnpc -l`."""

    external_port: int
    protocol: str
    internal_client: str
    internal_port: int
    description: str
    lease: int


_UPNPC_LINE = re.compile(
    r"^\s*\d+\s+(?P<proto>TCP|UDP)\s+(?P<eport>\d+)->(?P<iaddr>[\d.]+):(?P<iport>\d+)\s+"
    r"'(?P<desc>.*)'\s+'(?P<rhost>.*)'\s+(?P<lease>\d+)\s*$"
)


def upnpc_list(net: HomeNet, ns: Namespace | None = None) -> list[Held]:
    """The router's mappings as `upnpc -l` (miniupnpc's own client) prints them."""
    out = net.upnpc(["-l"], ns=ns).stdout
    held = []
    for line in out.splitlines():
        m = _UPNPC_LINE.match(line)
        if m:
            held.append(
                Held(
                    int(m["eport"]),
                    m["proto"],
                    m["iaddr"],
                    int(m["iport"]),
                    m["desc"],
                    int(m["lease"]),
                )
            )
    return held


def upnpc_held(net: HomeNet, port: int, proto: str = "TCP") -> Held | None:
    return next(
        (h for h in upnpc_list(net) if h.external_port == port and h.protocol == proto), None
    )


def natpmpc_public_address(net: HomeNet) -> str | None:
    """`natpmpc -g <router>`: the public address libnatpmp reads."""
    out = net.pc.run(["natpmpc", "-g", net.router_lan_ip], check=False, timeout=20).stdout
    m = re.search(r"Public IP address : ([\d.]+)", out)
    return m.group(1) if m else None


def router_nat_rules(net: HomeNet) -> str:
    """The router's nftables DNAT chain that miniupnpd fills (the ground truth of a mapping)."""
    return net.router.run(["nft", "list", "chain", "inet", "nat", "prerouting_miniupnpd"]).stdout
