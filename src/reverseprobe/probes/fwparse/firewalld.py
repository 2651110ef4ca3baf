"""Read `firewall-cmd --list-all-zones` (firewalld.zone(5), firewalld.richlanguage(5)) for one
inbound TCP connection to the port.

The connection lands in the zone bound to its interface (else the default zone), or in a zone
bound to its source address, which we cannot know. Within a zone firewalld checks deny rich
rules, then allow (ports, services, accept rich rules), then the zone's target: `default`,
REJECT and DROP refuse what nothing allowed. Service names resolve to ports through the
service XML files (firewalld.service(5)); a service we cannot resolve is an unknown condition.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from reverseprobe.probes.fwparse.model import Inbound, ParseError, Reading, Verdict

MAX_TEXT = 4 * 1024 * 1024
_HEADER = re.compile(r"^(?P<name>[\w.-]+)(?:\s+\((?P<flags>[^)]*)\))?\s*$")
_KEY = re.compile(r"^\s+(?P<key>[a-z -]+):\s?(?P<value>.*)$")


@dataclass(frozen=True)
class Zone:
    name: str
    default: bool
    active: bool
    target: str
    interfaces: tuple[str, ...]
    sources: tuple[str, ...]
    services: tuple[str, ...]
    ports: tuple[str, ...]
    rich_rules: tuple[str, ...]


@dataclass
class _ZoneBuilder:
    name: str
    flags: str
    values: dict[str, str] = field(default_factory=dict)
    rich: list[str] = field(default_factory=list)

    def build(self) -> Zone:
        v = self.values
        return Zone(
            name=self.name,
            default="default" in self.flags,
            active="active" in self.flags,
            target=v.get("target", "default").strip() or "default",
            interfaces=tuple(v.get("interfaces", "").split()),
            sources=tuple(v.get("sources", "").split()),
            services=tuple(v.get("services", "").split()),
            ports=tuple(v.get("ports", "").split()),
            rich_rules=tuple(self.rich),
        )


def parse_zones(text: str) -> list[Zone]:
    """`firewall-cmd --list-all-zones` (or `--list-all`) -> zones; ParseError otherwise."""
    if len(text) > MAX_TEXT:
        raise ParseError("firewall-cmd output too large")
    zones: list[_ZoneBuilder] = []
    in_rich = False
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            m = _HEADER.match(line)
            if not m:
                raise ParseError(f"unreadable zone header {line[:80]!r}")
            zones.append(_ZoneBuilder(m.group("name"), m.group("flags") or ""))
            in_rich = False
            continue
        if not zones:
            raise ParseError("zone settings before any zone name")
        k = _KEY.match(line)
        if k and not (in_rich and line.lstrip().startswith("rule")):
            key = k.group("key").strip()
            zones[-1].values[key] = k.group("value")
            in_rich = key == "rich rules"
            if in_rich and k.group("value").strip():
                zones[-1].rich.append(k.group("value").strip())
            continue
        if in_rich and line.strip().startswith("rule"):
            zones[-1].rich.append(line.strip())
            continue
        raise ParseError(f"unreadable firewalld line {line.strip()[:80]!r}")
    if not zones or not any("target" in z.values for z in zones):
        raise ParseError("no zone with a target in the firewall-cmd output")
    return [z.build() for z in zones]


def parse_service_xml(text: str) -> list[tuple[str, str]]:
    """The (port, protocol) pairs of a firewalld service file; ports may be ranges 'a-b'."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)  # noqa: S314 - a local root-owned config file
    except ET.ParseError as exc:
        raise ParseError(f"service XML: {exc}") from None
    return [(p.get("port", ""), p.get("protocol", "")) for p in root.iter("port")]


def _port_in(spec: str, port: int) -> bool:
    lo, sep, hi = spec.partition("-")
    try:
        return int(lo) <= port <= (int(hi) if sep else int(lo))
    except ValueError:
        return False


@dataclass(frozen=True)
class _Rich:
    family: str | None
    conditions: tuple[str, ...]  # source/destination/limit: what we cannot evaluate
    port: str | None
    protocol: str | None
    service: str | None
    action: str | None  # accept | reject | drop | None (log/audit only, or forward)
    text: str


def parse_rich(text: str) -> _Rich:  # noqa: PLR0912 - a parser: one branch per rich-rule keyword
    try:
        tok = shlex.split(text)
    except ValueError:
        raise ParseError(f"unbalanced quotes in rich rule {text[:80]!r}") from None
    if not tok or tok[0] != "rule":
        raise ParseError(f"not a rich rule: {text[:80]!r}")
    fam = port = proto = service = action = None
    conds: list[str] = []
    element = ""
    neg = False
    for t in tok[1:]:
        key, eq, val = t.partition("=")
        if not eq:
            if t == "not":
                neg = True
                continue
            if t in ("accept", "reject", "drop", "mark"):
                action = t if t != "mark" else None
            element = t
            if t in ("masquerade", "forward-port", "icmp-block", "icmp-type", "source-port"):
                action = "other"
            continue
        if element == "" and key == "family":
            fam = val
        elif element in ("source", "destination"):
            conds.append(f"{element} {'not ' if neg else ''}{key}={val}")
            neg = False
        elif element == "port" and key == "port":
            port = val
        elif (element, key) in (("port", "protocol"), ("protocol", "value")):
            proto = val
        elif element == "service" and key == "name":
            service = val
        elif element == "limit" and key == "value":
            conds.append(f"limit {val}")
    return _Rich(fam, tuple(conds), port, proto, service, action, text)


ServicePorts = Callable[[str], "list[tuple[str, str]] | None"]


def evaluate(  # noqa: PLR0911, PLR0912 - a rule evaluator: one branch per zone element
    text: str,
    inbound: Inbound,
    service_ports: ServicePorts | Mapping[str, list[tuple[str, str]]] = lambda _n: None,
) -> Reading:
    """firewalld's verdict for `inbound`. `service_ports(name)` -> (port, proto) pairs, or
    None when the service is not known."""
    lookup = service_ports.get if isinstance(service_ports, Mapping) else service_ports
    zones = parse_zones(text)
    zone = _zone_for(zones, inbound.iface)
    where = f"zone {zone.name}"
    note = (
        f"the zone of {inbound.iface}"
        if inbound.iface in zone.interfaces
        else "the default zone" + ("" if inbound.iface else " (interface unknown)")
    )
    port = inbound.port

    def svc_match(name: str) -> bool | None:
        ports = lookup(name)
        if ports is None:
            return None
        return any(p == "tcp" and _port_in(spec, port) for spec, p in ports)

    cond_accepts: list[str] = []
    cond_blocks: list[str] = []
    rich = [parse_rich(r) for r in zone.rich_rules]
    # deny rich rules come first
    for r in rich:
        m = _rich_match(r, port, svc_match)
        if r.action in ("reject", "drop") and m is not False:
            if m is None or r.conditions:
                cond_blocks.append(r.text)
                continue
            return Reading("firewalld", True, Verdict.BLOCKED, rule=r.text, where=where)
    for spec in zone.ports:
        p, _, proto = spec.partition("/")
        if proto == "tcp" and _port_in(p, port):
            return Reading("firewalld", True, Verdict.ALLOWED, rule=f"port {spec}", where=where)
    for name in zone.services:
        sm = svc_match(name)
        if sm:
            return Reading("firewalld", True, Verdict.ALLOWED, rule=f"service {name}", where=where)
        if sm is None:
            cond_accepts.append(f"service {name} (ports not known)")
    for r in rich:
        m = _rich_match(r, port, svc_match)
        if r.action == "accept" and m is not False:
            if m is None or r.conditions:
                cond_accepts.append(r.text)
                continue
            return Reading("firewalld", True, Verdict.ALLOWED, rule=r.text, where=where)
    for z in zones:  # zones bound to source addresses take connections from those sources
        allows = z.target.upper() == "ACCEPT" or any(
            s.endswith("/tcp") and _port_in(s.split("/")[0], port) for s in z.ports
        )
        if z is not zone and z.sources and z.active and allows:
            cond_accepts.append(f"zone {z.name} for sources {' '.join(z.sources)}")
    target = zone.target.upper()
    if target == "ACCEPT":
        return Reading("firewalld", True, Verdict.OPEN, where=where, note=f"{note}: target ACCEPT")
    if cond_accepts:
        return Reading(
            "firewalld",
            True,
            Verdict.CONDITIONAL,
            where=where,
            note=f"{note}: TCP {port} is accepted only by: {'; '.join(cond_accepts)}",
        )
    blocked = f"; also blocked by: {'; '.join(cond_blocks)}" if cond_blocks else ""
    return Reading(
        "firewalld",
        True,
        Verdict.DEFAULT_DROP,
        where=where,
        note=f"{note}: target {zone.target} refuses what the zone does not allow{blocked}",
    )


def _rich_match(r: _Rich, port: int, svc: Callable[[str], bool | None]) -> bool | None:
    if r.family == "ipv6" or r.action in (None, "other"):
        return False
    if r.port is not None:
        if (r.protocol or "tcp") != "tcp" or not _port_in(r.port, port):
            return False
    elif r.service is not None:
        m = svc(r.service)
        if m is not True:
            return m
    elif r.protocol is not None and r.protocol not in ("tcp", "6"):
        return False
    return True


def _zone_for(zones: list[Zone], iface: str | None) -> Zone:
    if iface:
        for z in zones:
            if iface in z.interfaces:
                return z
    return next((z for z in zones if z.default), zones[0])
