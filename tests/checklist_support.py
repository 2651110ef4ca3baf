"""Hand-built checklist results for the renderer and checklist tests (no network)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from finding_support import literal
from reverseprobe.commands.checklist import ChecklistResult, CheckRunner, MoveRunner, run_site
from reverseprobe.config import CheckConfig, MoveTestConfig
from reverseprobe.diagnosis.catalogue import CATALOGUE
from reverseprobe.model import Finding, PacsEntry, ProbeResult, Report, Status
from reverseprobe.runner import Deadline
from reverseprobe.sitefile import PacsSpec, Site

CHECK_PROBES = ("listeners", "interfaces", "public_ip", "router", "firewall", "inbound")
MOVE_PROBES = ("echo", "find", "move", "get")


def probes(names: Iterable[str], **status: Status) -> dict[str, ProbeResult]:
    out: dict[str, ProbeResult] = {}
    for n in names:
        st = status.get(n, Status.OK)
        reason = None if st is Status.OK else f"{n} ended {st.value} (fixture)"
        out[n] = ProbeResult(status=st, reason=reason, elapsed_s=0.01)
    return out


def report(
    command: str,
    findings: Iterable[Finding],
    probe_results: Mapping[str, ProbeResult],
    entry: PacsEntry | None = None,
) -> Report:
    return Report(
        command=command,
        probes=dict(probe_results),
        findings=list(findings),
        pacs_entry=entry,
        elapsed_s=0.5,
    )


def f(code: str, summary: str | None = None) -> Finding:
    return literal(code, summary or f"{code} happened (fixture).", f"Fix for {code} (fixture).")


def site(*pacs: PacsSpec, name: str = "Radiology 2") -> Site:
    return Site(
        name=name,
        aet="MYSCU",
        port=11112,
        upnp=False,
        public_ip=False,
        pacs=pacs,
        path=Path("site.toml"),
    )


def pacs(name: str, host: str = "203.0.113.10", aet: str = "ARCHIVE") -> PacsSpec:
    return PacsSpec(name=name, host=host, port=104, aet=aet)


SITE_ENTRY = PacsEntry("MYSCU", "198.51.100.7", 11112, "the public address: this PC is behind NAT")


def fake_runs(
    site_findings: Iterable[Finding],
    pacs_findings: Mapping[str, tuple[list[Finding], dict[str, ProbeResult]]],
    *,
    check_status: Mapping[str, Status] | None = None,
) -> tuple[CheckRunner, MoveRunner]:
    """(check, move_test) runners for run_site that return these findings."""

    def check(cfg: CheckConfig, deadline: Deadline) -> Report:
        return report(
            "check", site_findings, probes(CHECK_PROBES, **(check_status or {})), SITE_ENTRY
        )

    def move_test(cfg: MoveTestConfig) -> Report:
        for name, (fs, pr) in pacs_findings.items():
            if cfg.pacs_host == name_host(name):
                return report("move-test", fs, pr, SITE_ENTRY)
        raise RuntimeError(f"no fixture for {cfg.pacs_host}")

    return check, move_test


def name_host(name: str) -> str:
    return f"{name.replace(' ', '-')}.example.org"


def sample_result(*, strict: bool = False) -> ChecklistResult:
    """A site with one warning, a PACS that does not know us, a PACS that aborts, a PACS that
    works, and a PACS whose move-test breaks."""
    specs = [
        PacsSpec(name=n, host=name_host(n), port=104, aet=a)
        for n, a in (
            ("main archive", "ARCHIVE"),
            ("teleradiology", "TELERAD"),
            ("good one", "GOOD"),
            ("broken", "BROKEN"),
        )
    ]
    check, move_test = fake_runs(
        [f("LISTENER_OK"), f("NAT_DETECTED"), f("UPNP_MAPPING_MISSING")],
        {
            "main archive": (
                [f("MOVE_DESTINATION_UNKNOWN"), f("CGET_AVAILABLE")],
                probes(MOVE_PROBES, move=Status.FAIL),
            ),
            "teleradiology": (
                [f("PACS_ABORTED")],
                probes(MOVE_PROBES, find=Status.FAIL, move=Status.SKIPPED, get=Status.SKIPPED),
            ),
            "good one": ([f("MOVE_OK")], probes(MOVE_PROBES, get=Status.SKIPPED)),
        },
    )
    return run_site(site(*specs), timeout=60, strict=strict, check=check, move_test=move_test)


def every_code_result() -> ChecklistResult:
    """Every catalogue code once: check codes on the site, the rest on two PACS."""
    check_codes = [c for c, e in CATALOGUE.items() if e.section.name not in ("PACS", "MOVE")]
    pacs_codes = [c for c in CATALOGUE if c not in check_codes]
    half = len(pacs_codes) // 2
    specs = [
        PacsSpec(name=n, host=name_host(n), port=104, aet="ARCHIVE") for n in ("alpha", "beta")
    ]
    check, move_test = fake_runs(
        [f(c) for c in check_codes],
        {
            "alpha": ([f(c) for c in pacs_codes[:half]], probes(MOVE_PROBES)),
            "beta": ([f(c) for c in pacs_codes[half:]], probes(MOVE_PROBES, get=Status.TIMEOUT)),
        },
    )
    return run_site(site(*specs), timeout=60, check=check, move_test=move_test)
