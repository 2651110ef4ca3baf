"""What a checklist run produced: one result per target (this PC, each PACS), and the whole.

Pure data for the renderers (render/checklist_text.py, html.py, junit.py) and for the JSON, which
keeps the top-level shape of every command (model.Report.to_dict).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from reverseprobe.model import Finding, PacsEntry, ProbeResult, Report
from reverseprobe.sitefile import PacsSpec, Site


@dataclass(frozen=True, kw_only=True)
class RunResult(ProbeResult):
    """One run of the checklist (check for the site, or move-test for a PACS), as a probe."""

    target: str
    command: str
    verdict: str | None = None  # None: the run did not produce a report
    probes: Mapping[str, ProbeResult] = field(default_factory=dict)
    pacs_entry: PacsEntry | None = None


@dataclass(frozen=True)
class TargetRun:
    target: str  # SITE_TARGET or the PACS name
    command: str  # check | move-test
    result: RunResult
    findings: tuple[Finding, ...]  # each names `target`
    report: Report | None  # None: not run, or it broke
    pacs: PacsSpec | None = None

    @property
    def key(self) -> str:
        return "check" if self.pacs is None else f"move-test:{self.target}"


@dataclass(frozen=True)
class ChecklistResult:
    site: Site
    runs: tuple[TargetRun, ...]
    elapsed_s: float
    strict: bool = False
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    hostname: str = (
        ""  # where the checklist ran (JUnit's testsuite hostname); filled by its builder
    )

    @property
    def site_run(self) -> TargetRun:
        return self.runs[0]

    @property
    def pacs_runs(self) -> tuple[TargetRun, ...]:
        return self.runs[1:]

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.runs for f in r.findings]

    def path_findings(self, run: TargetRun) -> list[Finding]:
        """What marks the path to one PACS: this PC's findings plus that PACS's."""
        return [*self.site_run.findings, *run.findings] if run.pacs else list(run.findings)

    def entry(self, run: TargetRun | None = None) -> PacsEntry:
        """What the PACS administrator enters for this site (as seen from `run`'s PACS)."""
        for r in (run, self.site_run):
            if r is not None and r.result.pacs_entry is not None:
                e = r.result.pacs_entry
                return e if e.aet else dataclasses.replace(e, aet=self.site.aet)
        return PacsEntry(self.site.aet, None, self.site.port, "this PC's address is unknown")

    def report(self) -> Report:
        """The same top-level JSON shape as every command (docs/reference.md "JSON reports")."""
        s = self.site
        return Report(
            command="checklist",
            probes={r.key: r.result for r in self.runs},
            findings=self.findings,
            pacs_entry=self.entry(),
            elapsed_s=self.elapsed_s,
            strict=self.strict,
            extra={
                "site": {"name": s.name, "aet": s.aet, "port": s.port, "file": str(s.path or "")},
                "pacs": [
                    {"name": p.name, "host": p.host, "port": p.port, "aet": p.aet, "study": p.study}
                    for p in s.pacs
                ],
                "started": self.started.isoformat(timespec="seconds"),
            },
        )
