"""The HTML report in a real headless Debian chromium: every finding and every path picture
visible, no console error, a screenshot.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages
ending in NUL on fds 3 and 4), so no debugging port is opened and no extra library is needed.
It runs in a network namespace of its own with nothing but loopback (`unshare --net`, as root),
with background networking off; the report's own Content-Security-Policy refuses any fetch, and
a fetch the page tried would show up as a console error, which fails the test.
Set RP_KEEP_SCREENSHOTS=DIR to keep the screenshots for a look.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checklist_support import every_code_result, sample_result
from reverseprobe.render.html import render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

WIDTH = 1100
# What the page itself can see of every finding, path picture and hop (run by DevTools,
# which the page's CSP does not restrict).
_PROBE_JS = """
(() => {
  const seen = el => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && el.checkVisibility({opacityProperty: true,
      visibilityProperty: true});
  };
  const out = {findings: [], svgs: [], hops: []};
  for (const li of document.querySelectorAll('li[data-code]'))
    out.findings.push({code: li.dataset.code, visible: seen(li),
                       text: li.innerText.slice(0, 400)});
  for (const svg of document.querySelectorAll('svg.path')) {
    const r = svg.getBoundingClientRect();
    out.svgs.push({visible: seen(svg), width: r.width, height: r.height,
                   right: r.right, hops: svg.querySelectorAll('g.hop').length});
  }
  for (const g of document.querySelectorAll('svg.path g.hop')) {
    const rect = g.querySelector('rect');
    out.hops.push({cls: g.getAttribute('class'), hop: g.dataset.hop, visible: seen(rect),
                   fill: getComputedStyle(rect).fill});
  }
  out.docWidth = document.documentElement.scrollWidth;
  out.viewport = window.innerWidth;
  return JSON.stringify(out);
})()
"""


class Chromium:
    """Headless chromium with the DevTools protocol on a pipe."""

    def __init__(self, tmp: Path) -> None:
        assert CHROMIUM is not None
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Chromium's ends above 4, so that moving them to 3 and 4 cannot clobber either.
        to_chrome_r, from_chrome_w = _above_4(to_chrome_r), _above_4(from_chrome_w)
        argv = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--user-data-dir={tmp / 'profile'}",
            "about:blank",
        ]
        isolate = ["unshare", "--net"] if os.geteuid() == 0 and shutil.which("unshare") else []

        def pipe_fds() -> None:  # in the child: its ends become fds 3 and 4 (inheritable)
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self._log = open(tmp / "chromium.log", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [*isolate, *argv],
            preexec_fn=pipe_fds,  # noqa: PLW1509 - single-threaded enough for a test
            close_fds=False,  # Python's own descriptors are non-inheritable anyway (PEP 446)
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def send(
        self, method: str, session: str | None = None, timeout: float = 30, **params: Any
    ) -> Any:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._next(deadline, f"the answer to {method}")
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for m in self.events:
            if m.get("method") == method:
                return m
        deadline = time.monotonic() + timeout
        while True:
            m = self._next(deadline, method)
            self.events.append(m)
            if m.get("method") == method:
                return m

    def _next(self, deadline: float, what: str) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError(f"chromium: no {what}")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium exited (code {self.proc.poll()}) before {what}")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)  # type: ignore[no-any-return]

    def close(self) -> None:
        try:
            os.write(
                self._to_chrome, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0"
            )
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
            os.close(self._to_chrome)
            os.close(self._from_chrome)
            self._log.close()


def _above_4(fd: int) -> int:
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5)
    os.close(fd)
    return new


def open_page(browser: Chromium, path: Path) -> str:
    """A new page showing `path`, with console and log events recorded; its session id."""
    target = browser.send("Target.createTarget", url="about:blank")["targetId"]
    session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Runtime", "Log", "Page"):
        browser.send(f"{domain}.enable", session)
    browser.send(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=WIDTH,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    browser.events.clear()
    browser.send("Page.navigate", session, url=path.as_uri())
    browser.wait_event("Page.loadEventFired")
    return session  # type: ignore[no-any-return]


def console_problems(browser: Chromium) -> list[str]:
    out = []
    for m in browser.events:
        p = m.get("params", {})
        if m.get("method") == "Runtime.consoleAPICalled":
            out.append(f"console.{p.get('type')}: {[a.get('value') for a in p.get('args', [])]}")
        elif m.get("method") == "Runtime.exceptionThrown":
            details = p.get("exceptionDetails", {})
            desc = details.get("exception", {}).get("description", "")
            out.append(f"exception: {details.get('text')} {desc}")
        elif m.get("method") == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            out.append(f"log {p['entry']['level']}: {p['entry'].get('text')}")
    return out


def screenshot(browser: Chromium, session: str, dest: Path) -> tuple[int, int]:
    size = browser.send("Page.getLayoutMetrics", session)["cssContentSize"]
    height = int(size["height"]) + 1
    browser.send(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=WIDTH,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    data = browser.send("Page.captureScreenshot", session, format="png", captureBeyondViewport=True)
    png = base64.b64decode(data["data"])
    dest.write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.fixture
def browser() -> Iterator[Chromium]:
    with tempfile.TemporaryDirectory(prefix="rp-chromium-") as d:
        b = Chromium(Path(d))
        try:
            b.send("Browser.getVersion", timeout=60)
            yield b
        finally:
            b.close()


def _keep(png: Path) -> None:
    keep = os.environ.get("RP_KEEP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)


@pytest.mark.parametrize("which", ["sample", "every-code"])
def test_report_in_chromium(browser: Chromium, tmp_path: Path, which: str) -> None:
    result = sample_result() if which == "sample" else every_code_result()
    page = tmp_path / f"report-{which}.html"
    page.write_text(render_html(result), encoding="utf-8")
    session = open_page(browser, page)
    seen = json.loads(
        browser.send("Runtime.evaluate", session, expression=_PROBE_JS)["result"]["value"]
    )

    codes = sorted(f.code for f in result.findings)
    assert sorted(f["code"] for f in seen["findings"]) == codes
    assert all(f["visible"] for f in seen["findings"]), [
        f for f in seen["findings"] if not f["visible"]
    ]
    needs_fix = {f.code for f in result.findings if f.severity.value != "pass"}
    for f in seen["findings"]:  # the fix is on screen, not only in the markup
        assert ("Fix:" in f["text"]) == (f["code"] in needs_fix), f
    pacs = len(result.pacs_runs)
    assert len(seen["svgs"]) == pacs
    for svg in seen["svgs"]:
        assert svg["visible"] and svg["hops"] == 5 and svg["height"] > 60
        assert svg["right"] <= seen["viewport"] + 1  # the picture fits the page width
    assert len(seen["hops"]) == 5 * pacs and all(h["visible"] for h in seen["hops"])
    fills = {h["cls"].split()[-1]: h["fill"] for h in seen["hops"]}
    assert len(set(fills.values())) == len(fills)  # one colour per state
    if which == "sample":
        assert {"hop-fail", "hop-warn", "hop-pass", "hop-none"} <= set(fills)
    assert seen["docWidth"] <= seen["viewport"]  # no horizontal scrolling

    w, h = screenshot(browser, session, tmp_path / f"report-{which}.png")
    assert w == WIDTH and h > 1000
    _keep(tmp_path / f"report-{which}.png")
    assert console_problems(browser) == []


def test_console_errors_and_fetches_are_caught(browser: Chromium, tmp_path: Path) -> None:
    """A control: the test would see a script error and a blocked fetch if the report had any."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "script-src 'unsafe-inline'\"><title>x</title></head><body>"
        "<img src='http://192.0.2.1/x.png' alt=''>"  # blocked by the CSP before any packet
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    open_page(browser, page)
    problems = "\n".join(console_problems(browser))
    assert "boom" in problems
    assert "undefinedFunction" in problems
    assert "Content Security Policy" in problems
