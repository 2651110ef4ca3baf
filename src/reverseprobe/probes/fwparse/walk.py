"""A netfilter chain walk with three-valued matches, shared by the nftables and iptables readers.

A rule whose match is True decides; False is skipped; None (a condition we cannot evaluate,
such as the source address) splits the walk: the rule's verdict becomes a *conditional*
outcome and the walk goes on as if it had not matched. The one outcome reached with every
unknown condition false is the *default* path: what happens to a PACS that no special rule
singles out. Base chains on one hook run in priority order; an accept ends only its own chain,
a drop ends the packet (nft(8), "VERDICT STATEMENT").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from reverseprobe.probes.fwparse.model import Verdict

MAX_DEPTH = 16  # nftables allows 16 nested jumps; deeper is a loop or garbage
MAX_STEPS = 20000  # rules visited per walk: bounded work on hostile input


class Action(str, Enum):
    ACCEPT = "accept"
    DROP = "drop"
    REJECT = "reject"
    JUMP = "jump"
    GOTO = "goto"
    RETURN = "return"
    CONTINUE = "continue"  # counter, log, comment: the walk goes on
    UNKNOWN = "unknown"  # queue, an unknown target: may or may not end the walk


@dataclass(frozen=True)
class Rule:
    match: bool | None
    action: Action
    text: str
    target: str | None = None  # chain for JUMP/GOTO
    why_unknown: str | None = None  # the condition we could not evaluate


@dataclass(frozen=True)
class Chain:
    name: str  # as the fix must name it, e.g. "inet filter input" or "filter INPUT"
    rules: tuple[Rule, ...]
    policy: Action | None = None  # base chains: ACCEPT or DROP; others: None (return)
    priority: int = 0


@dataclass(frozen=True)
class Outcome:
    action: Action  # ACCEPT, DROP, REJECT or UNKNOWN
    chain: str
    rule: str | None  # None: the chain's policy
    conditional: bool = False
    why: tuple[str, ...] = ()  # the unknown conditions on the way

    @property
    def blocks(self) -> bool:
        return self.action in (Action.DROP, Action.REJECT)


@dataclass
class _Walk:
    chains: Mapping[str, Chain]
    steps: int = 0
    memo: dict[str, list[tuple[str, Outcome | None, bool, tuple[str, ...]]]] = field(
        default_factory=dict
    )


# A chain's results: ("final", outcome, conditional, why) or ("return", None, conditional, why).
_Res = tuple[str, Outcome | None, bool, tuple[str, ...]]


def _chain_results(w: _Walk, name: str, stack: tuple[str, ...]) -> list[_Res]:
    if name in w.memo:
        return w.memo[name]
    chain = w.chains.get(name)
    if chain is None or name in stack or len(stack) >= MAX_DEPTH:
        msg = (f"chain {name!r} " + ("not found" if chain is None else "loops or nests too deep"),)
        return [("final", Outcome(Action.UNKNOWN, name, None, False, msg), False, msg)]
    out: list[_Res] = []
    path_cond, path_why = False, tuple[str, ...]()  # the walk goes on here only under conditions
    for rule in chain.rules:
        w.steps += 1
        if w.steps > MAX_STEPS:
            too_many = ("too many rules to walk",)
            out.append(
                ("final", Outcome(Action.UNKNOWN, name, None, False, too_many), path_cond, too_many)
            )
            break
        if rule.match is False:
            continue
        cond = rule.match is None
        why: tuple[str, ...] = (rule.why_unknown or rule.text,) if cond else ()
        sub = _apply(w, chain, rule, (*stack, name))
        conts = [(c, ws) for k, _o, c, ws in sub if k == "continue"]
        for kind, oc, c, ws in sub:
            if kind != "continue":
                out.append((kind, oc, c or cond or path_cond, path_why + ws + why))
        if cond:
            continue  # the branch where the rule did not match goes on unchanged
        if not conts:
            w.memo[name] = out
            return out
        if all(c for c, _ws in conts):
            path_cond = True
            path_why = path_why + conts[0][1]
    out.append(("return", None, path_cond, path_why))
    w.memo[name] = out
    return out


def _apply(w: _Walk, chain: Chain, rule: Rule, stack: tuple[str, ...]) -> list[_Res]:
    a = rule.action
    if a in (Action.ACCEPT, Action.DROP, Action.REJECT):
        return [("final", Outcome(a, chain.name, rule.text), False, ())]
    if a is Action.CONTINUE:
        return [("continue", None, False, ())]
    if a is Action.RETURN:
        return [("return", None, False, ())]
    if a in (Action.JUMP, Action.GOTO) and rule.target is not None:
        res = _chain_results(w, rule.target, stack)
        if a is Action.JUMP:  # a return from a jump continues after the jump
            return [("continue" if k == "return" else k, o, c, ws) for k, o, c, ws in res]
        return res
    why = f"cannot tell what {rule.text!r} does"
    return [
        ("final", Outcome(Action.UNKNOWN, chain.name, rule.text, True, (why,)), True, (why,)),
        ("continue", None, False, ()),
    ]


def walk_chain(chain: Chain, chains: Mapping[str, Chain]) -> list[Outcome]:
    """Every possible outcome of one base chain; exactly one has conditional=False."""
    w = _Walk(chains)
    outs: list[Outcome] = []
    for kind, oc, cond, why in _chain_results(w, chain.name, ()):
        if kind == "final" and oc is not None:
            outs.append(Outcome(oc.action, oc.chain, oc.rule, cond, why))
        else:  # fell off the end or returned: the policy decides
            pol = chain.policy or Action.ACCEPT
            outs.append(Outcome(pol, chain.name, None, cond, why))
    return outs


def walk_hook(base: Sequence[Chain], chains: Mapping[str, Chain]) -> list[Outcome]:
    """Outcomes of base chains run one after the other (by priority): a block in any ends it,
    an accept passes the packet to the next chain."""
    outs: list[Outcome] = []
    last_accepts: list[Outcome] = []
    default_alive = True
    for ch in sorted(base, key=lambda c: c.priority):
        res = walk_chain(ch, chains)
        accepts = [o for o in res if o.action is Action.ACCEPT]
        for o in res:
            if o.action is not Action.ACCEPT:
                # reached only if every earlier chain's default path accepted
                outs.append(o if default_alive else _cond(o))
        if not accepts:
            return outs
        if not any(not o.conditional for o in accepts):
            default_alive = False
        last_accepts = [o if default_alive or o.conditional else _cond(o) for o in accepts]
    if not base:
        return [Outcome(Action.ACCEPT, "(no chain on this hook)", None)]
    return outs + last_accepts


def _cond(o: Outcome) -> Outcome:
    return Outcome(o.action, o.chain, o.rule, True, o.why)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    decisive: Outcome | None  # the default path's outcome
    conditional_accepts: tuple[Outcome, ...] = ()
    conditional_blocks: tuple[Outcome, ...] = ()


def decide(outcomes: Sequence[Outcome]) -> Decision:
    """Map outcomes to a verdict by the default path (see module docstring)."""
    defaults = [o for o in outcomes if not o.conditional]
    acc = tuple(o for o in outcomes if o.conditional and o.action is Action.ACCEPT)
    blk = tuple(o for o in outcomes if o.conditional and o.blocks)
    if len(defaults) != 1:
        return Decision(Verdict.UNKNOWN, None, acc, blk)
    d = defaults[0]
    unknown = [o for o in outcomes if o.action is Action.UNKNOWN]
    if unknown:  # a rule that may or may not end the walk: nothing is claimed
        return Decision(
            Verdict.UNKNOWN, unknown[0] if d.action is not Action.UNKNOWN else d, acc, blk
        )
    if d.blocks:
        if acc:
            return Decision(Verdict.CONDITIONAL, d, acc, blk)
        return Decision(Verdict.BLOCKED if d.rule else Verdict.DEFAULT_DROP, d, acc, blk)
    return Decision(Verdict.ALLOWED if d.rule else Verdict.OPEN, d, acc, blk)
