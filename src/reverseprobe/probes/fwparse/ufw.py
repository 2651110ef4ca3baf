"""Read `ufw status verbose` (ufw(8)) for one inbound TCP connection to the port.

ufw evaluates its user rules in order, first match wins, then the default incoming policy.
IPv6 rules ("(v6)", or a rule naming an IPv6 address) apply to an IPv6 connection only, the
others to IPv4 only; with IPV6=yes in /etc/default/ufw ufw mirrors each rule to v6 itself
(issue 15), with IPV6=no it leaves IPv6 alone (ip6tables then decides, read on its own). An
application profile name ("OpenSSH")
names ports this output does not show, so such a rule is an unknown condition. ufw writes
iptables rules, which `iptables.py` reads in full: this reading adds the ufw view and its fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reverseprobe.probes.fwparse.model import Inbound, ParseError, Reading, Verdict

MAX_TEXT = 1024 * 1024
_DEFAULT = re.compile(r"^Default:\s*(\w+)\s*\(incoming\)", re.MULTILINE)
_ACTIONS = ("ALLOW", "DENY", "REJECT", "LIMIT")
_ROW = re.compile(
    r"^(?P<to>.+?)\s{2,}(?P<action>ALLOW|DENY|REJECT|LIMIT)(?:\s+(?P<dir>IN|OUT|FWD))?"
    r"\s{2,}(?P<from>.+?)\s*$"
)


@dataclass(frozen=True)
class UfwRule:
    to: str
    action: str  # ALLOW | DENY | REJECT | LIMIT
    direction: str  # IN | OUT | FWD
    source: str
    line: str


@dataclass(frozen=True)
class UfwStatus:
    active: bool
    default_incoming: str | None  # allow | deny | reject
    rules: tuple[UfwRule, ...]


def parse_status(text: str) -> UfwStatus:
    """`ufw status verbose` -> UfwStatus; ParseError when it is not that output."""
    if len(text) > MAX_TEXT:
        raise ParseError("ufw output too large")
    m = re.search(r"^Status:\s*(\w+)", text, re.MULTILINE)
    if not m:
        raise ParseError("no 'Status:' line in the ufw output")
    active = m.group(1).lower() == "active"
    d = _DEFAULT.search(text)
    rules = []
    in_table = False
    for line in text.splitlines():
        if re.match(r"^--\s+-+\s+-+", line.strip()):
            in_table = True
            continue
        if not in_table or not line.strip():
            continue
        r = _ROW.match(line.strip())
        if not r:
            raise ParseError(f"unreadable ufw rule line {line.strip()[:80]!r}")
        rules.append(
            UfwRule(
                to=r.group("to").strip(),
                action=r.group("action"),
                direction=r.group("dir") or "IN",
                source=r.group("from").strip(),
                line=" ".join(line.split()),
            )
        )
    if active and d is None:
        raise ParseError("no 'Default: ... (incoming)' line: run `ufw status verbose`")
    return UfwStatus(active, d.group(1).lower() if d else None, tuple(rules))


def _ports_match(spec: str, port: int) -> bool | None:
    """'11112/tcp', '104', '80,443/tcp', '6000:6007/tcp'; None for an app profile name."""
    ports, _, proto = spec.partition("/")
    if proto and proto != "tcp":
        return False
    total = 0
    for part in ports.split(","):
        lo, sep, hi = part.partition(":")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            return None
        total += 1
        if int(lo) <= port <= (int(hi) if sep else int(lo)):
            return True
    return False if total else None


def ipv6_setting(default_file: str) -> bool | None:
    """IPV6= of /etc/default/ufw: whether ufw filters IPv6 too; None when the line is absent."""
    m = re.search(r"^\s*IPV6\s*=\s*\"?(\w+)", default_file[:MAX_TEXT], re.MULTILINE)
    return None if m is None else m.group(1).lower() == "yes"


def rule_family(rule: UfwRule) -> str:
    """ipv6 for a "(v6)" rule or one naming an IPv6 address, else ipv4."""
    text = f"{rule.to} {rule.source}"
    if "(v6)" in text or re.search(r"(?:^|\s)[0-9a-fA-F]*:[0-9a-fA-F:]*:[0-9a-fA-F:./]*", text):
        return "ipv6"
    return "ipv4"


def _strip_v6(rule: UfwRule) -> UfwRule:
    def clean(s: str) -> str:
        return " ".join(s.replace("(v6)", " ").split())

    return UfwRule(clean(rule.to), rule.action, rule.direction, clean(rule.source), rule.line)


def _rule_match(rule: UfwRule, inbound: Inbound) -> tuple[bool | None, str]:  # noqa: PLR0912 - a rule matcher: one branch per ufw rule field
    """(match, the condition we could not evaluate)."""
    if rule.direction != "IN" or rule_family(rule) != inbound.family:
        return False, ""
    rule = _strip_v6(rule)
    to, _, iface = rule.to.partition(" on ")
    conds: list[str] = []
    if iface:
        iface = iface.strip()
        if iface == "lo" or (inbound.iface is not None and iface != inbound.iface):
            return False, ""
        if inbound.iface is None:
            conds.append(f"on {iface}")
    words = to.split()
    if not words:
        return False, ""
    port_spec = words[-1]
    dest = words[0] if len(words) == 2 else None
    if port_spec == "Anywhere":
        pass
    elif (
        re.fullmatch(r"[\d.:/a-fA-F]+", port_spec)
        and ("." in port_spec or port_spec.count(":") > 1)
        and dest is None
    ):
        conds.append(f"to {port_spec}")  # a destination address alone
    else:
        pm = _ports_match(port_spec, inbound.port)
        if pm is False:
            return False, ""
        if pm is None:
            conds.append(f"application profile {port_spec!r}")
    if dest is not None and dest != "Anywhere":
        conds.append(f"to {dest}")
    src = rule.source.split()
    if src and src[0] != "Anywhere":
        conds.append(f"from {rule.source}")
    elif len(src) > 1:  # "Anywhere 80/tcp": a source port
        conds.append(f"from port {src[1]}")
    return (None if conds else True), ", ".join(conds)


def evaluate(text: str, inbound: Inbound, *, ipv6: bool | None = None) -> Reading:
    """ufw's verdict for `inbound`; `ipv6`: the IPV6= setting (None: not read, then the
    presence of "(v6)" rules says it)."""
    r = _evaluate(text, inbound, ipv6)
    return Reading(r.source, r.active, r.verdict, r.rule, r.where, r.note, inbound.family)


def _evaluate(text: str, inbound: Inbound, ipv6: bool | None) -> Reading:  # noqa: PLR0911 - one return per ufw outcome
    st = parse_status(text)
    if not st.active:
        return Reading("ufw", False, Verdict.OPEN, note="ufw is inactive")
    if inbound.family == "ipv6":
        if ipv6 is None:
            ipv6 = any(rule_family(r) == "ipv6" for r in st.rules) or not st.rules
        if not ipv6:
            return Reading(
                "ufw",
                False,
                Verdict.OPEN,
                note="IPV6=no in /etc/default/ufw: ufw leaves IPv6 alone",
            )
    cond_accepts: list[str] = []
    cond_blocks: list[str] = []
    for rule in st.rules:
        m, cond = _rule_match(rule, inbound)
        if m is False:
            continue
        allow = rule.action in ("ALLOW", "LIMIT")
        if m is None:
            (cond_accepts if allow else cond_blocks).append(f"{rule.line} ({cond})")
            continue
        if rule.action == "LIMIT":
            return Reading(
                "ufw",
                True,
                Verdict.CONDITIONAL,
                rule=rule.line,
                note=(
                    f"TCP {inbound.port} is rate-limited: ufw denies a source's 6th connection "
                    "within 30 s, and a PACS opens one per C-MOVE"
                ),
            )
        v = Verdict.ALLOWED if allow else Verdict.BLOCKED
        note = f"blocked only for: {'; '.join(cond_blocks)}" if allow and cond_blocks else ""
        return Reading("ufw", True, v, rule=rule.line, note=note)
    default = st.default_incoming or "deny"
    if default == "allow":
        return Reading("ufw", True, Verdict.OPEN, note="default incoming policy: allow")
    if cond_accepts:
        return Reading(
            "ufw",
            True,
            Verdict.CONDITIONAL,
            note=f"TCP {inbound.port} is accepted only by: {'; '.join(cond_accepts)}",
        )
    return Reading("ufw", True, Verdict.DEFAULT_DROP, note=f"default incoming policy: {default}")
