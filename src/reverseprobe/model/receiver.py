"""The receiver preflight's result (pure data): what the user's receiver answered to the
presentation contexts the PACS will propose (PS3.8 9.3.2.2, 9.3.3.2), to a wrong called AE
title, and to a second and a third association at once."""

from __future__ import annotations

from dataclasses import dataclass

from reverseprobe.model import ProbeResult
from reverseprobe.model.dicom import Rejection

TRANSIENT = 2  # A-ASSOCIATE-RJ result 2: rejected-transient (PS3.8 9.3.4)
LOCAL_LIMIT = 2  # reason 2 of source 3 (service-provider, presentation): local limit exceeded


@dataclass(frozen=True)
class PreflightContext:
    """One (SOP class, transfer syntax) pair proposed as its own presentation context, so its
    answer is its own. `result`: accepted | user-rejection | no-reason |
    abstract-syntax-not-supported | transfer-syntaxes-not-supported | not-answered."""

    abstract_syntax: str
    transfer_syntax: str
    result: str
    source: str  # c-find | recorded-move | option | default


@dataclass(frozen=True)
class AssociationTry:
    """One A-ASSOCIATE-RQ of the preflight and its outcome."""

    purpose: str  # contexts | wrong-called-aet | second | third
    called_aet: str
    state: str  # accepted | rejected | unreachable | no-answer | aborted | ...
    reject: Rejection | None = None
    detail: str | None = None

    @property
    def busy(self) -> bool:
        """Rejected as transient, "local limit exceeded" (PS3.8 9.3.4)."""
        r = self.reject
        return r is not None and r.result == TRANSIENT


@dataclass(frozen=True, kw_only=True)
class ReceiverPreflight(ProbeResult):
    host: str = ""
    port: int = 0
    called_aet: str = ""
    calling_aet: str = ""
    contexts: tuple[PreflightContext, ...] = ()
    tries: tuple[AssociationTry, ...] = ()
    contexts_from: str = "default"  # where the proposed contexts came from

    def attempt(self, purpose: str) -> AssociationTry | None:
        return next((t for t in self.tries if t.purpose == purpose), None)

    @property
    def refused(self) -> tuple[PreflightContext, ...]:
        return tuple(c for c in self.contexts if c.result not in ("accepted", "not-answered"))
