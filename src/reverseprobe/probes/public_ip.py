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


def _session() -> Any:
    """A requests Session bound to an IPv4 source address (so only A records are dialled),
    ignoring environment proxies and netrc."""
    import requests
    from requests.adapters import HTTPAdapter

    class _IPv4Adapter(HTTPAdapter):
        # urllib3 binds each socket to source_address: binding 0.0.0.0 fails on an IPv6
        # socket, so create_connection() moves on to the IPv4 addresses of the name.
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["source_address"] = ("0.0.0.0", 0)
            super().init_poolmanager(*args, **kwargs)

    s = requests.Session()
    s.trust_env = False
    adapter = _IPv4Adapter(max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.headers.update({"User-Agent": _USER_AGENT, "Accept": "text/plain, application/json"})
    return s


def fetch_one(url: str, deadline: Deadline) -> SourceAnswer:
    """GET `url` within the deadline and parse its answer. Never raises."""
    t0 = time.monotonic()

    def done(address: str | None, error: str | None) -> SourceAnswer:
        return SourceAnswer(url, address, error, round((time.monotonic() - t0) * 1000, 1))

    try:
        import requests

        timeout = deadline.share(REQUEST_BUDGET_S)
        with (
            _session() as s,
            s.get(url, timeout=(timeout, timeout), stream=True, allow_redirects=False) as resp,
        ):
            if resp.is_redirect:
                return done(None, f"HTTP {resp.status_code} redirect (not followed)")
            if resp.status_code != 200:
                return done(None, f"HTTP {resp.status_code}")
            length = resp.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > MAX_BODY:
                return done(None, f"answer longer than {MAX_BODY} bytes ({length})")
            body = b""
            for chunk in resp.iter_content(chunk_size=1024):
                body += chunk
                if len(body) > MAX_BODY:
                    return done(None, f"answer longer than {MAX_BODY} bytes")
                if deadline.expired:
                    return done(None, "answer still arriving at the deadline")
        return done(parse_answer(body), None)
    except AnswerError as exc:
        return done(None, str(exc))
    except requests.Timeout:
        return done(None, "timed out")
    except requests.ConnectionError as exc:
        return done(None, f"connection failed: {_reason(exc)}")
    except Exception as exc:  # noqa: BLE001 - whatever a service does is a result
        return done(None, f"{type(exc).__name__}: {_clip(str(exc), 160)}")


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, in one short line."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc)
    if "] " in text:
        text = text.split("] ", 1)[1]
    return _clip(text.strip("()' "), 120) or type(exc).__name__


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
