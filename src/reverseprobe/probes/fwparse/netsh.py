"""Read Windows Defender Firewall through `netsh advfirewall` (English output).

`netsh advfirewall show currentprofile` names the active profile(s), their state and policy;
`netsh advfirewall firewall show rule name=all dir=in verbose` lists the inbound rules. Windows
applies a matching block rule before any allow rule; without either, the profile's inbound
policy decides (BlockInbound by default). BlockInboundAlways ("block all incoming connections,
including those in the list of allowed apps") ignores allow rules. A rule limited to a program,
a service, remote addresses or interface types is an unknown condition unless the program is
the listener's. netsh localizes its output: other languages are reported as unreadable.
"""

from __future__ import annotations

import ntpath
import re
from dataclasses import dataclass

from reverseprobe.probes.fwparse.model import Inbound, ParseError, Reading, Verdict

MAX_TEXT = 32 * 1024 * 1024
_PROFILE_HEADER = re.compile(r"^(Domain|Private|Public) Profile Settings:", re.MULTILINE)
_SETTING = re.compile(r"^(?P<key>[A-Za-z][A-Za-z ]*?)\s{2,}(?P<value>\S.*?)\s*$")
_RULE_FIELD = re.compile(r"^(?P<key>[A-Za-z][A-Za-z ]*):\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class Profile:
    name: str  # Domain | Private | Public
    state_on: bool
    inbound_policy: str  # BlockInbound | BlockInboundAlways | AllowInbound | NotConfigured


@dataclass(frozen=True)
class FwRule:
    name: str
    fields: dict[str, str]

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key.lower(), default)


def parse_profiles(text: str) -> list[Profile]:
    """`netsh advfirewall show currentprofile` (or `allprofiles`) -> profiles."""
    if len(text) > MAX_TEXT:
        raise ParseError("netsh output too large")
    heads = list(_PROFILE_HEADER.finditer(text))
    if not heads:
        raise ParseError("no '<Name> Profile Settings:' in the netsh output (not English?)")
    out = []
    for i, h in enumerate(heads):
        body = text[h.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        settings = {}
        for line in body.splitlines():
            m = _SETTING.match(line.strip())
            if m:
                settings[m.group("key").lower()] = m.group("value")
        if "state" not in settings or "firewall policy" not in settings:
            raise ParseError(f"{h.group(1)} profile without State or Firewall Policy")
        policy = settings["firewall policy"].split(",")[0].strip()
        out.append(Profile(h.group(1), settings["state"].upper() == "ON", policy))
    return out


def parse_rules(text: str) -> list[FwRule]:
    """`netsh advfirewall firewall show rule name=all dir=in verbose` -> rules."""
    if len(text) > MAX_TEXT:
        raise ParseError("netsh output too large")
    if re.search(r"^No rules match", text, re.MULTILINE):
        return []
    rules: list[FwRule] = []
    current: dict[str, str] | None = None
    name = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or set(line) == {"-"} or line == "Ok.":
            continue
        m = _RULE_FIELD.match(line)
        if not m:
            continue  # wrapped description text and the like
        key, value = m.group("key").lower(), m.group("value")
        if key == "rule name":
            if current is not None:
                rules.append(FwRule(name, current))
            name, current = value, {}
            continue
        if current is not None:
            current[key] = value
    if current is not None:
        rules.append(FwRule(name, current))
    if not rules and text.strip():
        raise ParseError("no 'Rule Name:' in the netsh output (not English?)")
    return rules


def _port_match(spec: str, port: int) -> bool | None:
    s = spec.strip()
    if not s or s.lower() == "any":
        return True
    hit = False
    for part in s.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit():
            continue  # RPC, RPC-EPMap, IPHTTPS, Teredo...: not a DICOM port
        if int(lo) <= port <= (int(hi) if sep and hi.isdigit() else int(lo)):
            hit = True
    return hit


def _rule_match(r: FwRule, inbound: Inbound, profiles: set[str]) -> tuple[bool | None, str]:
    if r.get("enabled").lower() != "yes" or r.get("direction").lower() != "in":
        return False, ""
    prof = r.get("profiles", "Any")
    if prof.lower() != "any" and not profiles & {p.strip() for p in prof.split(",")}:
        return False, ""
    proto = r.get("protocol", "Any").upper()
    if proto not in ("TCP", "ANY", "6"):
        return False, ""
    if proto == "ANY" or _port_match(r.get("localport", "Any"), inbound.port):
        pass
    else:
        return False, ""
    conds = []
    program = r.get("program")
    if program and program.lower() != "any":
        if inbound.program is None:
            conds.append(f"program {program}")
        elif ntpath.normcase(program) != ntpath.normcase(inbound.program):
            return False, f"program {program}"  # the port's rule, for another program
    for key, label in (
        ("remoteip", "remote address"),
        ("localip", "local address"),
        ("service", "service"),
        ("interfacetypes", "interface type"),
        ("remoteport", "remote port"),
    ):
        v = r.get(key, "Any")
        if v and v.lower() != "any":
            conds.append(f"{label} {v}")
    return (None if conds else True), ", ".join(conds)


def evaluate(profiles_text: str, rules_text: str | None, inbound: Inbound) -> Reading:  # noqa: PLR0911, PLR0912 - a rule evaluator: one branch per profile and rule field
    """Windows Firewall's verdict for `inbound` on the current profile(s)."""
    profiles = [p for p in parse_profiles(profiles_text) if p.state_on]
    if not profiles:
        return Reading("windows", False, Verdict.OPEN, note="the firewall is off")
    names = {p.name for p in profiles}
    where = ", ".join(sorted(names)) + " profile"
    if any(p.inbound_policy.lower() == "blockinboundalways" for p in profiles):
        return Reading(
            "windows",
            True,
            Verdict.BLOCKED,
            rule="Firewall Policy BlockInboundAlways (block all incoming connections)",
            where=where,
        )
    if rules_text is None:
        return Reading("windows", True, Verdict.UNKNOWN, where=where, note="rules not read")
    rules = parse_rules(rules_text)
    cond_allow, cond_block = [], []
    allow: FwRule | None = None
    others: list[str] = []  # allow rules for the port that name another program
    for r in rules:
        m, cond = _rule_match(r, inbound, names)
        if m is False:
            if cond and r.get("action").lower() in ("allow", "bypass"):
                others.append(f"{r.name!r} ({cond})")
            continue
        action = r.get("action").lower()
        if action == "block":
            if m:
                return Reading("windows", True, Verdict.BLOCKED, rule=r.name, where=where)
            cond_block.append(f"{r.name!r} ({cond})")
        elif action in ("allow", "bypass"):
            if m and allow is None:
                allow = r
            elif not m:
                cond_allow.append(f"{r.name!r} ({cond})")
    blocked = f"blocked only for: {_some(cond_block)}" if cond_block else ""
    if allow is not None:
        return Reading("windows", True, Verdict.ALLOWED, rule=allow.name, where=where, note=blocked)
    if all(p.inbound_policy.lower() == "allowinbound" for p in profiles):
        return Reading("windows", True, Verdict.OPEN, where=where, note="policy AllowInbound")
    if cond_allow:
        return Reading(
            "windows",
            True,
            Verdict.CONDITIONAL,
            where=where,
            note=f"TCP {inbound.port} is allowed only by: {_some(cond_allow)}",
        )
    return Reading(
        "windows",
        True,
        Verdict.DEFAULT_DROP,
        where=where,
        note="inbound policy BlockInbound and no allow rule for the port"
        + (
            f"; TCP {inbound.port} is allowed only for another program than the listener "
            f"({inbound.program}): {_some(others)}"
            if others
            else ""
        ),
    )


def _some(items: list[str], n: int = 3) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return "; ".join(items[:n]) + more
