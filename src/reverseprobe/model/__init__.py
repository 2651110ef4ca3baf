"""The report model: probe results with a status, findings, the PACS entry.

A field left as None means "not checked", never "false" (tailscale netcheck's rule). JSON is
this model serialized (`to_dict`), with a schema version.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


class Status(str, enum.Enum):
    """How a probe ended. Only OK means the probe measured what it was for."""

    OK = "ok"
    FAIL = "fail"
    SKIPPED = "skipped"
    TIMEOUT = "timeout"
    ERROR = "error"


class Severity(str, enum.Enum):
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"
    PASS = "pass"  # noqa: S105 - a severity, not a password


SEVERITY_ORDER = {Severity.FAIL: 0, Severity.WARN: 1, Severity.INFO: 2, Severity.PASS: 3}


@dataclass(frozen=True)
class Finding:
    """One problem (or confirmation), with its fix; `code` is stable API (docs/reference.md)."""

    code: str
    severity: Severity
    summary: str
    fix: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    target: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity.value,
            "summary": self.summary,
            "fix": self.fix,
            "detail": to_jsonable(self.detail),
        }
        if self.target is not None:
            d["target"] = self.target
        return d


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    """Base of every probe result: a status, why (when not OK), and how long it took."""

    status: Status
    reason: str | None = None
    elapsed_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class PacsEntry:
    """What the PACS administrator must enter: AE title -> host:port."""

    aet: str
    host: str | None
    port: int
    note: str = ""
    # The other address family's entry where both work (issue 15): (family, host, note).
    alternatives: tuple[tuple[str, str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"aet": self.aet, "host": self.host, "port": self.port}
        d["note"] = self.note
        if self.alternatives:
            d["alternatives"] = [
                {"family": f, "host": h, "port": self.port, "note": n}
                for f, h, n in self.alternatives
            ]
        return d


@dataclass(frozen=True)
class Report:
    command: str
    probes: Mapping[str, ProbeResult]
    findings: Sequence[Finding]
    pacs_entry: PacsEntry | None
    elapsed_s: float
    strict: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> Severity:
        return verdict(self.findings, strict=self.strict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "command": self.command,
            "verdict": self.verdict.value,
            "findings": [f.to_dict() for f in sort_findings(self.findings)],
            "probes": {name: p.to_dict() for name, p in self.probes.items()},
            "pacs_entry": self.pacs_entry.to_dict() if self.pacs_entry else None,
            "elapsed_s": round(self.elapsed_s, 3),
        }
        d.update(to_jsonable(dict(self.extra)))
        return d


def verdict(findings: Sequence[Finding], *, strict: bool = False) -> Severity:
    """pass | warn | fail; with strict a warning is a failure (docs/reference.md exit codes)."""
    sev = {f.severity for f in findings}
    if Severity.FAIL in sev or (strict and Severity.WARN in sev):
        return Severity.FAIL
    if Severity.WARN in sev:
        return Severity.WARN
    return Severity.PASS


def sort_findings(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, enums, tuples and mappings to plain JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 4)
    return obj
