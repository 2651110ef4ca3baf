"""The public address per family (IPv4, and IPv6 beside it), as several well-known HTTPS
services see it, voted.

Robust tools ask several services at once and vote (notes/nat.md): one service may be down,
slow, behind a CDN that answers with its own address, or simply wrong. Every request is forced
onto IPv4 (the address a PACS would dial for an IPv4 DICOM entry), ignores proxy settings from
the environment (a proxy's address is not ours), carries a timeout taken from the deadline, and
reads at most `MAX_BODY` bytes. The probe returns at its deadline whatever has answered by then;
a service still busy is reported as timed out (its thread ends at its own timeout).

IPv6 is asked at the same time and under the same deadline, each request forced onto IPv6
(issue 15: a dual-stack line has a NATed IPv4 address and a routed IPv6 one, so the two are
different answers, not a disagreement). The result's own fields and status stay the IPv4
family's; `families` holds both.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from reverseprobe.concurrent import gather
from reverseprobe.config import CheckConfig
from reverseprobe.httpfetch import STILL_ARRIVING, FetchError, FetchKind, fetch
from reverseprobe.model import Status
from reverseprobe.model.check import PublicIpFamily as PublicIpFamily
from reverseprobe.model.check import PublicIpResult as PublicIpResult
from reverseprobe.model.check import SourceAnswer as SourceAnswer
from reverseprobe.runner import Deadline, Probe

# Plain text (ipify, icanhazip, ifconfig.me, AWS), JSON (ipify ?format=json) and key=value
# (Cloudflare's trace). All HTTPS, all answer with the caller's address and nothing else.
DEFAULT_SERVICES: tuple[str, ...] = (
    "https://api.ipify.org?format=json",
    "https://ipv4.icanhazip.com/",
    "https://checkip.amazonaws.com/",
    "https://ifconfig.me/ip",
    "https://www.cloudflare.com/cdn-cgi/trace",
)
# Asked over IPv6 (api6/ipv6. answer over IPv6 only; ifconfig.me and Cloudflare are dual-stack).
DEFAULT_SERVICES_V6: tuple[str, ...] = (
    "https://api6.ipify.org?format=json",
    "https://ipv6.icanhazip.com/",
    "https://ifconfig.me/ip",
    "https://www.cloudflare.com/cdn-cgi/trace",
)
FAMILIES = ("ipv4", "ipv6")
MAX_BODY = 4096  # the longest honest answer (Cloudflare's trace) is ~300 bytes
REQUEST_BUDGET_S = 4.0  # one service's connect + read, at most
# JSON keys services use for the caller's address (ipify "ip", ip-api "query", httpbin
# "origin", the reflector's /v1/ip "ip").
_JSON_KEYS = ("ip", "address", "ip_addr", "query", "origin", "observed_ip")
_USER_AGENT = "reverseprobe (public address check)"


class AnswerError(ValueError):
    """A service's answer does not name an address of the family asked; str() says why."""


# --- pure: parse an answer, vote ------------------------------------------------------------


def parse_answer(body: bytes, family: str = "ipv4") -> str:
    """The address of `family` in a service's answer: JSON, `ip=` lines, or the bare address.

    Raises AnswerError for anything else (HTML, the other family's address, several
    addresses, binary).
    """
    if len(body) > MAX_BODY:
        raise AnswerError(f"answer longer than {MAX_BODY} bytes")
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise AnswerError("answer is not UTF-8 text") from None
    if not text:
        raise AnswerError("empty answer")
    if text.startswith("{"):
        return _from_json(text, family)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    trace = [ln[3:] for ln in lines if ln.startswith("ip=")]
    if trace:
        return _ip(trace[0], family)
    if len(lines) != 1:
        raise AnswerError(f"expected one address, got {len(lines)} lines: {_clip(text)!r}")
    return _ip(lines[0], family)


def _from_json(text: str, family: str) -> str:
    try:
        doc: Any = json.loads(text)
    except ValueError:
        raise AnswerError(f"invalid JSON: {_clip(text)!r}") from None
    if not isinstance(doc, dict):
        raise AnswerError("JSON answer is not an object")
    for key in _JSON_KEYS:
        value = doc.get(key)
        if isinstance(value, str):
            return _ip(value, family)
    raise AnswerError(f"JSON answer has no address field ({', '.join(_JSON_KEYS)})")


def _ip(text: str, family: str) -> str:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        raise AnswerError(f"not an IP address: {_clip(text)!r}") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if family == "ipv4" and not isinstance(ip, ipaddress.IPv4Address):
        raise AnswerError(f"an IPv6 address ({ip}) although asked over IPv4")
    if family == "ipv6" and not isinstance(ip, ipaddress.IPv6Address):
        raise AnswerError(f"an IPv4 address ({ip}) although asked over IPv6")
    return str(ip)


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[:n] + "..."


def vote(answers: Sequence[SourceAnswer]) -> tuple[str | None, bool | None]:
    """(most common address, whether all answers agree). Ties go to the earliest source;
    `consistent` is None with fewer than two answers: nothing to compare."""
    addrs = [a.address for a in answers if a.address is not None]
    if not addrs:
        return None, None
    counts = Counter(addrs)
    best = max(counts.values())
    winner = next(a for a in addrs if counts[a] == best)
    return winner, (len(counts) == 1 if len(addrs) >= 2 else None)


# --- I/O: one request per service, concurrently ---------------------------------------------


def fetch_one(url: str, deadline: Deadline, family: str = "ipv4") -> SourceAnswer:
    """GET `url` within the deadline (over `family` only, at most MAX_BODY) and parse its
    answer. Never raises."""
    t0 = time.monotonic()

    def done(address: str | None, error: str | None) -> SourceAnswer:
        return SourceAnswer(url, address, error, round((time.monotonic() - t0) * 1000, 1))

    try:
        resp = fetch(
            "GET",
            url,
            timeout=deadline.share(REQUEST_BUDGET_S),
            max_bytes=MAX_BODY,
            headers={"User-Agent": _USER_AGENT, "Accept": "text/plain, application/json"},
            ipv4_only=family == "ipv4",
            ipv6_only=family == "ipv6",
            name="public-ip",
        )
        if resp.is_redirect:
            return done(None, f"HTTP {resp.status} redirect (not followed)")
        if resp.status != 200:
            return done(None, f"HTTP {resp.status}")
        return done(parse_answer(resp.body, family), None)
    except AnswerError as exc:
        return done(None, str(exc))
    except FetchError as exc:
        return done(None, _why(exc))
    except Exception as exc:  # noqa: BLE001 - whatever a service does is a result
        return done(None, f"{type(exc).__name__}: {_clip(str(exc), 160)}")


def _why(exc: FetchError) -> str:
    """A failed fetch in this probe's words (the reports and tests know them)."""
    if exc.kind is FetchKind.TIMEOUT:
        return exc.reason if exc.reason == STILL_ARRIVING else "timed out"
    if exc.kind is FetchKind.TOO_LARGE:
        shown = f" ({exc.announced})" if exc.announced is not None else ""
        return f"answer longer than {MAX_BODY} bytes{shown}"
    if exc.kind in (FetchKind.REFUSED, FetchKind.UNREACHABLE):
        return f"connection failed: {exc.reason}"
    return exc.reason


def literal_family(url: str) -> str | None:
    """The family of a URL whose host is an IP literal ("ipv4"/"ipv6"), None for a name:
    a literal is asked over its own family only."""
    try:
        host = urlsplit(url).hostname or ""
        return "ipv6" if ipaddress.ip_address(host).version == 6 else "ipv4"
    except ValueError:
        return None


def probe_public_ip(services: Sequence[str] | None, deadline: Deadline) -> PublicIpResult:
    """Ask every service over IPv4 and over IPv6, all concurrently under the one deadline;
    vote per family on what has answered by then. Status and the top-level fields are the
    IPv4 family's, as before IPv6 was asked."""
    given = tuple(dict.fromkeys(services)) if services else None
    plan: dict[str, tuple[str, ...]] = {
        fam: tuple(
            u
            for u in (given or (DEFAULT_SERVICES if fam == "ipv4" else DEFAULT_SERVICES_V6))
            if literal_family(u) in (None, fam)
        )
        for fam in FAMILIES
    }
    t0 = time.monotonic()

    def ask(url: str, fam: str) -> Callable[[], SourceAnswer]:
        return lambda: fetch_one(url, deadline, fam)

    jobs = {f"{fam} {u}": ask(u, fam) for fam in FAMILIES for u in plan[fam]}
    got = {
        key: a
        for key, a in gather(jobs, deadline, name="public-ip").items()
        if isinstance(a, SourceAnswer)
    }
    elapsed_ms = round((time.monotonic() - t0) * 1000, 1)
    families = tuple(
        _family(
            fam,
            tuple(
                got.get(f"{fam} {u}")
                or SourceAnswer(u, None, "no answer by the deadline", elapsed_ms)
                for u in plan[fam]
            ),
        )
        for fam in FAMILIES
    )
    v4 = families[0]
    if v4.status is Status.SKIPPED:  # only IPv6 literals were given: nothing said over IPv4
        return PublicIpResult(status=Status.FAIL, reason=v4.reason, families=families)
    return PublicIpResult(
        status=v4.status,
        reason=v4.reason,
        address=v4.address,
        answers=v4.answers,
        consistent=v4.consistent,
        families=families,
    )


def _family(family: str, answers: tuple[SourceAnswer, ...]) -> PublicIpFamily:
    name = "IPv4" if family == "ipv4" else "IPv6"
    if not answers:
        return PublicIpFamily(
            family=family, status=Status.SKIPPED, reason=f"no service to ask over {name}"
        )
    address, consistent = vote(answers)
    if address is None:
        why = "; ".join(f"{a.source}: {a.error}" for a in answers)
        what = "no public-IP service answered" + ("" if family == "ipv4" else " over IPv6")
        return PublicIpFamily(
            family=family, status=Status.FAIL, answers=answers, reason=f"{what} ({why})"
        )
    return PublicIpFamily(
        family=family, status=Status.OK, address=address, answers=answers, consistent=consistent
    )


def check_probe(cfg: CheckConfig) -> Probe:
    """The `public_ip` probe of `check`: skipped with --no-public-ip."""
    if not cfg.public_ip:
        return lambda _d: PublicIpResult(
            status=Status.SKIPPED, reason="not checked: --no-public-ip"
        )
    services = cfg.ip_services
    return lambda d: probe_public_ip(services, d)
