"""Read `nft -j list ruleset` (libnftables-json(5)) and walk it for one inbound TCP SYN.

Base chains of type filter on the prerouting and input hooks of the ip and inet families see
an inbound IPv4 connection, those of the ip6 and inet families an IPv6 one (issue 15; arp,
bridge and netdev tables see neither, and nat/route chains do not filter). In an inet chain a
rule is restricted to one family by `meta nfproto`, or by an `ip`/`ip6` header match (nft(8)
adds the implicit nfproto dependency), so each family is walked on its own.
Known expressions are evaluated for that packet; anything else (an address set
we cannot place the PACS in, `xt` matches of iptables-nft, fib, socket, limits) is unknown,
never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from reverseprobe.probes.fwparse.model import Inbound, ParseError, Reading, Verdict
from reverseprobe.probes.fwparse.nft_text import expr_text, rule_text
from reverseprobe.probes.fwparse.walk import Action, Chain, Decision, Rule, decide, walk_hook

_HOOKS = {"prerouting": 0, "input": 1}  # netfilter order for an inbound packet
_FAMILIES = {"ipv4": ("ip", "inet"), "ipv6": ("ip6", "inet")}
_L3 = {"ipv4": "ip", "ipv6": "ip6"}  # the header (payload protocol) of each family
MAX_JSON = 16 * 1024 * 1024
_PROTO_NUM = {"tcp": 6, "udp": 17, "icmp": 1, "sctp": 132, "dccp": 33, "udplite": 136}
_OTHER_L4 = {"udp", "udplite", "sctp", "dccp", "icmp", "igmp", "esp", "ah", "comp", "icmpv6"}
_UNKNOWN = object()  # a packet field we do not know (source address, mark...)

Json = Any


def load(text: str) -> list[dict[str, Json]]:
    """The `nftables` array of `nft -j list ruleset`; ParseError for anything else."""
    if len(text) > MAX_JSON:
        raise ParseError(f"nft JSON larger than {MAX_JSON} bytes")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ParseError(f"not JSON: {exc}") from None
    items = doc.get("nftables") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ParseError("no 'nftables' array in the JSON")
    return [i for i in items if isinstance(i, dict)]


def evaluate(
    text: str, inbound: Inbound, *, skip_tables: Iterable[tuple[str, str]] = ()
) -> Reading:
    """The nftables verdict for `inbound`. `skip_tables`: (family, name) read elsewhere
    (the iptables-nft tables, whose `xt` expressions iptables-save shows in full)."""
    items = load(text)
    skip = set(skip_tables)
    sets: dict[tuple[str, str, str], list[Json]] = {}
    chains: dict[str, dict[str, Json]] = {}
    rules: dict[str, list[dict[str, Json]]] = {}
    for item in items:
        kind, body = next(iter(item.items()))
        if not isinstance(body, dict):
            continue
        fam, table = str(body.get("family", "")), str(body.get("table", ""))
        if fam not in _FAMILIES.get(inbound.family, ()) or (fam, table) in skip:
            continue
        if kind in ("set", "map"):
            elem = body.get("elem", [])
            sets[(fam, table, str(body.get("name")))] = elem if isinstance(elem, list) else []
        elif kind == "chain":
            chains[_cname(fam, table, str(body.get("name")))] = body
        elif kind == "rule":
            rules.setdefault(_cname(fam, table, str(body.get("chain"))), []).append(body)
    ev = _Evaluator(inbound, sets)
    built: dict[str, Chain] = {}
    base: list[tuple[int, Chain]] = []
    for key, body in chains.items():
        fam, table = str(body["family"]), str(body["table"])
        policy = None
        hook = body.get("hook")
        is_base = body.get("type") == "filter" and hook in _HOOKS
        if is_base:
            policy = Action.DROP if body.get("policy") == "drop" else Action.ACCEPT
        prio = body.get("prio", 0)
        prio = prio if isinstance(prio, int) else 0
        ch = Chain(
            name=key,
            rules=tuple(ev.rule(fam, table, r) for r in rules.get(key, [])),
            policy=policy,
            priority=prio,
        )
        built[key] = ch
        if is_base:
            base.append((_HOOKS[str(hook)] * 10**6 + prio, ch))
    if not base:
        return Reading(
            "nftables",
            False,
            Verdict.OPEN,
            note="no filter chain on the input hook",
            family=inbound.family,
        )
    ordered = [Chain(c.name, c.rules, c.policy, order) for order, c in base]
    d = decide(walk_hook(ordered, built))
    return _reading(d, inbound.port, inbound.family)


def _reading(d: Decision, port: int, family: str = "ipv4") -> Reading:
    o = d.decisive
    notes = []
    if d.verdict is Verdict.CONDITIONAL:
        conds = "; ".join(sorted({w for a in d.conditional_accepts for w in a.why}))
        notes.append(f"TCP {port} is accepted only when: {conds}")
    elif d.verdict is Verdict.UNKNOWN:
        whys = sorted({w for w in (o.why if o else ()) if w})
        notes.append("could not evaluate: " + ("; ".join(whys) or "the rule set"))
    elif d.conditional_blocks and not (o and o.blocks):
        conds = "; ".join(sorted({w for b in d.conditional_blocks for w in b.why}))
        notes.append(f"dropped or rejected only when: {conds}")
    return Reading(
        source="nftables",
        active=True,
        verdict=d.verdict,
        rule=o.rule if o else None,
        where=o.chain if o else None,
        note=". ".join(notes),
        family=family,
    )


def _cname(family: str, table: str, chain: str) -> str:
    return f"{family} {table} {chain}"


class _Evaluator:
    """Expressions of one rule -> a three-valued match and an action, for one packet."""

    def __init__(self, inbound: Inbound, sets: Mapping[tuple[str, str, str], list[Json]]):
        self.inbound = inbound
        self.sets = sets

    def rule(self, family: str, table: str, body: Mapping[str, Json]) -> Rule:  # noqa: PLR0912 - a parser: one branch per nft statement kind
        exprs = body.get("expr")
        text = rule_text(exprs) if isinstance(exprs, list) else "?"
        if "comment" in body and isinstance(body["comment"], str):
            text += f' comment "{body["comment"]}"'
        handle = body.get("handle")
        text = f"{text} (handle {handle})" if handle is not None else text
        if not isinstance(exprs, list):
            return Rule(None, Action.UNKNOWN, text, why_unknown="rule without expressions")
        match: bool | None = True
        unknown: list[str] = []
        action, target = Action.CONTINUE, None
        for e in exprs:
            if not isinstance(e, dict) or len(e) != 1:
                return Rule(None, Action.UNKNOWN, text, why_unknown="malformed expression")
            key, val = next(iter(e.items()))
            if key == "match":
                m = self._match(family, table, val)
                if m is False:
                    return Rule(False, Action.CONTINUE, text)
                if m is None:
                    match = None
                    unknown.append(expr_text(e))
            elif key in ("accept", "drop", "reject", "return", "continue"):
                action = {
                    "accept": Action.ACCEPT,
                    "drop": Action.DROP,
                    "reject": Action.REJECT,
                    "return": Action.RETURN,
                    "continue": Action.CONTINUE,
                }[key]
                break
            elif key in ("jump", "goto"):
                tgt = val.get("target") if isinstance(val, dict) else None
                if not isinstance(tgt, str):
                    return Rule(None, Action.UNKNOWN, text, why_unknown="jump without target")
                action = Action.JUMP if key == "jump" else Action.GOTO
                target = _cname(family, table, tgt)
                break
            elif key == "vmap":
                return self._vmap(
                    family=family, table=table, val=val, match=match, unknown=unknown, text=text
                )
            elif key == "xt":
                xt = val if isinstance(val, dict) else {}
                name, typ = str(xt.get("name", "")), str(xt.get("type", ""))
                if typ == "target":
                    action = _XT_TARGETS.get(name, Action.UNKNOWN)
                    break
                if name != "comment":
                    match = None
                    unknown.append(f"iptables match '{name}'")
            elif key in ("limit", "quota", "meter", "connlimit", "synproxy"):
                match = None
                unknown.append(expr_text(e))
            elif key in ("queue", "tproxy", "fwd"):
                action = Action.UNKNOWN
                break
            # counter, log, mangle, set, notrack, dup, ct helper...: no effect on the verdict
        why = ", ".join(unknown) if unknown else None
        return Rule(match, action, text, target=target, why_unknown=why)

    def _vmap(  # noqa: PLR0913 - keyword-only context of the verdict map
        self,
        *,
        family: str,
        table: str,
        val: Json,
        match: bool | None,
        unknown: list[str],
        text: str,
    ) -> Rule:
        if not isinstance(val, dict):
            return Rule(None, Action.UNKNOWN, text, why_unknown="malformed verdict map")
        key_val = self._value(val.get("key"))
        data = val.get("data")
        if isinstance(data, str) and data.startswith("@"):
            elems: Json = self.sets.get((family, table, data[1:]))
        elif isinstance(data, dict):
            elems = data.get("set")
        else:
            elems = None
        if key_val is _UNKNOWN or not isinstance(elems, list):
            return Rule(None, Action.UNKNOWN, text, why_unknown=expr_text({"vmap": val}))
        for item in elems:
            # map elements with attributes come as {"elem": {"val": [key, verdict]...}}
            pair = item["elem"] if isinstance(item, dict) and "elem" in item else item
            if not (isinstance(pair, list) and len(pair) == 2):
                continue
            hit = _contains(pair[0], key_val, self.sets, family, table)
            if hit is None:
                match = None
                unknown.append(expr_text({"vmap": val}))
                continue
            if hit:
                verdict = pair[1]
                if isinstance(verdict, dict) and len(verdict) == 1:
                    vk, vv = next(iter(verdict.items()))
                    if vk in ("jump", "goto") and isinstance(vv, dict):
                        tgt = _cname(family, table, str(vv.get("target")))
                        act = Action.JUMP if vk == "jump" else Action.GOTO
                        return Rule(match, act, text, target=tgt, why_unknown=", ".join(unknown))
                    act = _VERDICTS.get(vk, Action.UNKNOWN)
                    return Rule(match, act, text, why_unknown=", ".join(unknown) or None)
        if match is None:  # an unknown element might have matched; none surely did
            return Rule(None, Action.UNKNOWN, text, why_unknown=", ".join(unknown))
        return Rule(False, Action.CONTINUE, text)

    def _match(self, family: str, table: str, m: Json) -> bool | None:
        if not isinstance(m, dict):
            return None
        op = m.get("op", "==")
        left, right = m.get("left"), m.get("right")
        # a payload of another layer-4 protocol implies a protocol match that fails
        if isinstance(left, dict) and "payload" in left:
            pl = left["payload"]
            proto = pl.get("protocol") if isinstance(pl, dict) else None
            if proto in _OTHER_L4 or proto in set(_L3.values()) - {_L3[self.inbound.family]}:
                return False  # another protocol's or the other family's header
        value = self._value(left)
        if value is _UNKNOWN:
            return True if _is_any(right) and op == "==" else None
        hit: bool | None
        if op in ("==", "in"):
            hit = _contains(right, value, self.sets, family, table)
        elif op == "!=":
            hit = _contains(right, value, self.sets, family, table)
            hit = None if hit is None else not hit
        elif op in ("<", ">", "<=", ">=") and isinstance(value, int) and isinstance(right, int):
            hit = {
                "<": value < right,
                ">": value > right,
                "<=": value <= right,
                ">=": value >= right,
            }[op]
        else:
            hit = None
        return hit

    def _value(self, left: Json) -> Any:  # noqa: PLR0911, PLR0912 - one return per nft expression kind
        """The packet's value for an expression: an int, a str, a set of flag names."""
        if not isinstance(left, dict) or len(left) != 1:
            return _UNKNOWN
        kind, spec = next(iter(left.items()))
        if not isinstance(spec, dict):
            return _UNKNOWN
        port = self.inbound.port
        if kind == "payload":
            proto, fld = spec.get("protocol"), spec.get("field")
            if proto in ("tcp", "th") and fld == "dport":
                return port
            own = _L3[self.inbound.family]
            if proto != own:
                return _UNKNOWN  # another header (the other family's: its match fails)
            if fld in ("protocol", "nexthdr"):
                return "tcp"
            if fld == "version":
                return 6 if own == "ip6" else 4
            return _UNKNOWN
        if kind == "meta":
            key = spec.get("key")
            if key == "l4proto":
                return "tcp"
            if key == "nfproto":
                return self.inbound.family
            if key == "protocol":
                return _L3[self.inbound.family]
            if key == "pkttype":
                return "host"
            if key in ("iifname", "iif"):
                return _Iface(self.inbound.iface)
            return _UNKNOWN
        if kind == "ct":
            key = spec.get("key")
            if key == "state":
                return frozenset({"new"})
            if key == "status":
                return frozenset()  # a new, un-NATed connection has no status flags
            if key == "direction":
                return "original"
            if key in ("l3proto", "protocol"):
                return self.inbound.family if key == "l3proto" else "tcp"
            return _UNKNOWN
        return _UNKNOWN


_VERDICTS = {
    "accept": Action.ACCEPT,
    "drop": Action.DROP,
    "reject": Action.REJECT,
    "return": Action.RETURN,
    "continue": Action.CONTINUE,
}
_XT_TARGETS = {
    "REJECT": Action.REJECT,
    "LOG": Action.CONTINUE,
    "NFLOG": Action.CONTINUE,
    "MARK": Action.CONTINUE,
    "CONNMARK": Action.CONTINUE,
}


class _Iface:
    """The interface the connection arrives on: never lo; `name` when we know it."""

    def __init__(self, name: str | None):
        self.name = name

    def equals(self, other: Json) -> bool | None:
        if not isinstance(other, str):
            return None
        if other in ("lo", "1"):
            return False
        if self.name is None:
            return None
        if other.endswith("*"):  # nft wildcard
            return self.name.startswith(other[:-1])
        return self.name == other


def _is_any(right: Json) -> bool:
    """0.0.0.0/0 and friends: matches whatever the address."""
    if isinstance(right, dict) and "prefix" in right:
        p = right["prefix"]
        return isinstance(p, dict) and p.get("len") == 0
    return False


def _contains(  # noqa: PLR0911 - one return per nft set/range/prefix form
    right: Json, value: Any, sets: Mapping[tuple[str, str, str], list[Json]], fam: str, table: str
) -> bool | None:
    """Whether `value` is (in) `right`: a literal, a list of flags, a set, a range, @named."""
    if isinstance(right, str) and right.startswith("@"):
        elems = sets.get((fam, table, right[1:]))
        if elems is None:
            return None
        return _any_of(elems, value, sets, fam, table)
    if isinstance(right, list):  # flags: ct state { established, related } in JSON
        return _any_of(right, value, sets, fam, table)
    if isinstance(right, dict):
        if "set" in right:
            s = right["set"]
            return _any_of(s if isinstance(s, list) else [s], value, sets, fam, table)
        if "range" in right:
            r = right["range"]
            if (
                isinstance(r, list)
                and len(r) == 2
                and all(isinstance(x, int) for x in r)
                and isinstance(value, int)
            ):
                return bool(r[0] <= value <= r[1])
            return None
        if "elem" in right and isinstance(right["elem"], dict):
            return _contains(right["elem"].get("val"), value, sets, fam, table)
        return None
    if isinstance(value, _Iface):
        return value.equals(right)
    if isinstance(value, frozenset):
        return right in value
    if isinstance(value, str) and isinstance(right, int):
        return _PROTO_NUM.get(value) == right
    if isinstance(value, (int, str)) and isinstance(right, (int, str)):
        return value == right
    return None


def _any_of(
    items: list[Json], value: Any, sets: Mapping[tuple[str, str, str], list[Json]], fam: str, t: str
) -> bool | None:
    saw_unknown = False
    for it in items:
        hit = _contains(it, value, sets, fam, t)
        if hit:
            return True
        saw_unknown = saw_unknown or hit is None
    return None if saw_unknown else False
