"""The public IPv4 address, as several well-known HTTPS services see it, voted.

Robust tools ask several services at once and vote (notes/nat.md): one service may be down,
slow, behind a CDN that answers with its own address, or simply wrong. Every request is forced
onto IPv4 (the address a PACS would dial for an IPv4 DICOM entry), ignores proxy settings from
the environment (a proxy's address is not ours), carries a timeout taken from the deadline, and
reads at most `MAX_BODY` bytes. The probe returns at its deadline whatever has answered by then;
a service still busy is reported as timed out (its thread ends at its own timeout).
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from reverseprobe.concurrent import gather
from reverseprobe.config import CheckConfig
from reverseprobe.httpfetch import STILL_ARRIVING, FetchError, FetchKind, fetch
from reverseprobe.model import Status
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
MAX_BODY = 4096  # the longest honest answer (Cloudflare's trace) is ~300 bytes
REQUEST_BUDGET_S = 4.0  # one service's connect + read, at most
# JSON keys services use for the caller's address (ipify "ip", ip-api "query", httpbin
# "origin", the reflector's /v1/ip "ip").
_JSON_KEYS = ("ip", "address", "ip_addr", "query", "origin", "observed_ip")
_USER_AGENT = "reverseprobe (public address check)"


class AnswerError(ValueError):
    """A service's answer does not name an IPv4 address; str() says why."""


# --- pure: parse an answer, vote ------------------------------------------------------------


def parse_answer(body: bytes) -> str:
    """The IPv4 address in a service's answer: JSON, `ip=` lines, or the bare address.

    Raises AnswerError for anything else (HTML, an IPv6 address, several addresses, binary).
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
        return _from_json(text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    trace = [ln[3:] for ln in lines if ln.startswith("ip=")]
    if trace:
        return _ipv4(trace[0])
    if len(lines) != 1:
        raise AnswerError(f"expected one address, got {len(lines)} lines: {_clip(text)!r}")
    return _ipv4(lines[0])


def _from_json(text: str) -> str:
    try:
        doc: Any = json.loads(text)
    except ValueError:
        raise AnswerError(f"invalid JSON: {_clip(text)!r}") from None
    if not isinstance(doc, dict):
        raise AnswerError("JSON answer is not an object")
    for key in _JSON_KEYS:
        value = doc.get(key)
        if isinstance(value, str):
            return _ipv4(value)
    raise AnswerError(f"JSON answer has no address field ({', '.join(_JSON_KEYS)})")


def _ipv4(text: str) -> str:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        raise AnswerError(f"not an IP address: {_clip(text)!r}") from None
    if not isinstance(ip, ipaddress.IPv4Address):
        raise AnswerError(f"an IPv6 address ({ip}) although asked over IPv4")
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


def fetch_one(url: str, deadline: Deadline) -> SourceAnswer:
    """GET `url` within the deadline (IPv4 only, at most MAX_BODY) and parse its answer.
    Never raises."""
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
            ipv4_only=True,
            name="public-ip",
        )
        if resp.is_redirect:
            return done(None, f"HTTP {resp.status} redirect (not followed)")
        if resp.status != 200:
            return done(None, f"HTTP {resp.status}")
        return done(parse_answer(resp.body), None)
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


def probe_public_ip(services: Sequence[str] | None, deadline: Deadline) -> PublicIpResult:
    """Ask every service concurrently; vote on what has answered by the deadline."""
    urls = tuple(dict.fromkeys(services or DEFAULT_SERVICES))
    t0 = time.monotonic()

    def ask(url: str) -> Callable[[], SourceAnswer]:
        return lambda: fetch_one(url, deadline)

    got = {
        url: a
        for url, a in gather({u: ask(u) for u in urls}, deadline, name="public-ip").items()
        if isinstance(a, SourceAnswer)
    }
    elapsed_ms = round((time.monotonic() - t0) * 1000, 1)
    ordered = tuple(
        got.get(u) or SourceAnswer(u, None, "no answer by the deadline", elapsed_ms) for u in urls
    )
    address, consistent = vote(ordered)
    if address is None:
        why = "; ".join(f"{a.source}: {a.error}" for a in ordered)
        return PublicIpResult(
            status=Status.FAIL,
            reason=f"no public-IP service answered ({why})",
            answers=ordered,
        )
    return PublicIpResult(status=Status.OK, address=address, answers=ordered, consistent=consistent)


def check_probe(cfg: CheckConfig) -> Probe:
    """The `public_ip` probe of `check`: skipped with --no-public-ip."""
    if not cfg.public_ip:
        return lambda _d: PublicIpResult(
            status=Status.SKIPPED, reason="not checked: --no-public-ip"
        )
    services = cfg.ip_services
    return lambda d: probe_public_ip(services, d)
