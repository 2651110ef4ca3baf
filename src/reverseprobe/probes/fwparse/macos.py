"""Read the macOS application firewall (`socketfilterfw`, Apple's ALF).

The ALF decides per application, not per port: when it is on, an incoming connection reaches
a program only if the program is allowed (listed as "Allow incoming connections", or signed
while "automatically allow signed software" is on); an unlisted program makes macOS ask the
user, and no answer means blocked. "Block all incoming connections" (global state 2) blocks
everything but a few system services. pf rules (`pfctl -sr`) need root and are not read here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reverseprobe.probes.fwparse.model import Inbound, ParseError, Reading, Verdict

MAX_TEXT = 4 * 1024 * 1024
_STATE = re.compile(r"Firewall is (enabled|disabled)\.?\s*\(State = (\d)\)", re.IGNORECASE)
_APP = re.compile(r"^\s*\d+\s*:\s*(?P<path>\S.*?)\s*$")
_APP_STATE = re.compile(r"\(\s*(Allow|Block) incoming connections\s*\)", re.IGNORECASE)


@dataclass(frozen=True)
class AlfState:
    enabled: bool
    block_all: bool
    allow_signed: bool | None
    apps: dict[str, bool]  # path -> allowed


def parse_state(text: str) -> AlfState:
    """Output of `socketfilterfw --getglobalstate --getblockall --getallowsigned --listapps`."""
    if len(text) > MAX_TEXT:
        raise ParseError("socketfilterfw output too large")
    m = _STATE.search(text)
    if not m:
        raise ParseError("no 'Firewall is enabled/disabled. (State = N)' line")
    state = int(m.group(2))
    block_all = state == 2
    allow_signed: bool | None = None
    for line in text.splitlines():
        low = line.lower()
        if "block all" in low and ("enabled" in low or " on" in low) and "disabled" not in low:
            block_all = True
        if re.search(r"allow\b.*\bsigned", low):
            allow_signed = bool(allow_signed) or "enabled" in low
    apps: dict[str, bool] = {}
    pending: str | None = None
    for line in text.splitlines():
        a = _APP.match(line)
        st = _APP_STATE.search(line)
        if a and not st and "total number" not in line.lower():
            pending = a.group("path")
        elif st and pending is not None:
            apps[pending] = st.group(1).lower() == "allow"
            pending = None
    return AlfState(state != 0, block_all, allow_signed, apps)


def evaluate(text: str, inbound: Inbound) -> Reading:
    st = parse_state(text)
    if not st.enabled:
        return Reading("macos", False, Verdict.OPEN, note="the application firewall is off")
    if st.block_all:
        return Reading(
            "macos",
            True,
            Verdict.BLOCKED,
            rule="Block all incoming connections",
            where="application firewall",
        )
    prog = inbound.program
    allowed_apps = [p for p, ok in st.apps.items() if ok]
    listed = f"; allowed programs: {_some(allowed_apps)}" if allowed_apps else ""
    if prog is None:
        return Reading(
            "macos",
            True,
            Verdict.DEFAULT_DROP,
            where="application firewall",
            note="no listener to look up: the firewall allows or blocks per application" + listed,
        )
    for path, allowed in st.apps.items():
        if prog == path or prog.startswith(path.rstrip("/") + "/"):
            return Reading(
                "macos",
                True,
                Verdict.ALLOWED if allowed else Verdict.BLOCKED,
                rule=f"{path}: {'Allow' if allowed else 'Block'} incoming connections",
                where="application firewall",
            )
    signed = (
        " (a signed program is allowed automatically: that setting is on)"
        if st.allow_signed
        else ""
    )
    return Reading(
        "macos",
        True,
        Verdict.DEFAULT_DROP,
        where="application firewall",
        note=f"the listener {prog} is not in the firewall's list: macOS asks the user the "
        f"first time, and blocks it when nobody answers{signed}"
        + (
            f"; allowed programs, none of them the listener: {_some(allowed_apps)}"
            if allowed_apps
            else ""
        ),
    )


def _some(items: list[str], n: int = 3) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more
