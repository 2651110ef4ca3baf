"""What the host firewall decides for an inbound TCP connection: the parsed readings and the
probe result (data only; the parsers live in probes/fwparse/)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from reverseprobe.model import ProbeResult


class ParseError(ValueError):
    """Firewall output that is not what the parser knows; str() says what was wrong."""


class Verdict(str, Enum):
    """For a new inbound TCP connection to the port, ordered from worst to best."""

    BLOCKED = "blocked"  # a rule provably drops or rejects it
    DEFAULT_DROP = "default-drop"  # nothing accepts it, the default policy drops it
    CONDITIONAL = "conditional"  # accepted only under conditions we cannot see (source...)
    UNKNOWN = "unknown"  # the reading could not decide (a rule we cannot evaluate)
    ALLOWED = "allowed"  # a rule accepts it
    OPEN = "open"  # nothing filters it (firewall off, or the default policy accepts)


_RANK = {v: i for i, v in enumerate(Verdict)}


def worst(verdicts: list[Verdict]) -> Verdict | None:
    """Every layer must let the connection pass, so the worst reading decides."""
    return min(verdicts, key=_RANK.__getitem__) if verdicts else None


@dataclass(frozen=True)
class Inbound:
    """The connection a PACS opens: TCP `port` on `iface` (None: not known), from `program`'s
    point of view the listener executable (Windows/macOS per-application rules)."""

    port: int
    iface: str | None = None
    program: str | None = None
    family: str = "ipv4"  # ipv4 | ipv6: which rules see it (issue 15: no NAT on IPv6)


@dataclass(frozen=True)
class Reading:
    """One firewall's verdict. `rule` is the deciding rule as its tool prints it; `where`
    names the chain/zone/profile holding it (for the fix); `note` explains conditions."""

    source: str  # nftables | iptables | ufw | firewalld | windows | macos
    active: bool
    verdict: Verdict
    rule: str | None = None
    where: str | None = None
    note: str = ""
    family: str = "ipv4"  # the packet family this reading is about


@dataclass(frozen=True)
class FamilyVerdict:
    """One address family's answer (issue 15): IPv6 has no NAT, so its filter rules (nft ip6
    and inet tables, ip6tables, ufw's v6 rules) are the whole way in. `verdict` None: nothing
    could be read for this family."""

    family: str  # ipv4 | ipv6
    verdict: Verdict | None
    deciding: Reading | None = None
    readings: tuple[Reading, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FirewallResult(ProbeResult):
    port: int
    platform: str
    interface: str | None = None  # where the PACS's connection arrives (default route)
    program: str | None = None  # the listener's executable (per-application firewalls)
    readings: tuple[Reading, ...] = ()
    unread: tuple[str, ...] = ()  # "ufw: permission denied", ...: claimed nothing
    verdict: Verdict | None = None  # None: nothing could be read
    deciding: Reading | None = None
    managers: tuple[str, ...] = ()  # active front ends (ufw, firewalld): their fix wins
    # readings/verdict/deciding above are IPv4's (as before issue 15); each family here
    families: tuple[FamilyVerdict, ...] = ()

    def family(self, name: str) -> FamilyVerdict | None:
        """The answer for `name` (ipv4 | ipv6), None when that family was not read."""
        return next((f for f in self.families if f.family == name), None)
