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
    # will: the PACS (its C-FIND, a recorded move, the user) named this transfer syntax, or it
    # is uncompressed, which any PACS falls back to; may: a compressed syntax archives commonly
    # hold, proposed because the PACS did not say which it holds (PS3.4 C.6.1.1.5: optional)
    expected: str = "will"


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
    # pairs past the 128-context limit of one association (PS3.8 9.3.2.2): not proposed
    untested: int = 0
    untested_sop_classes: tuple[str, ...] = ()

    def attempt(self, purpose: str) -> AssociationTry | None:
        return next((t for t in self.tries if t.purpose == purpose), None)

    @property
    def refused(self) -> tuple[PreflightContext, ...]:
        return tuple(c for c in self.contexts if c.result not in ("accepted", "not-answered"))

    def accepted_for(self, sop_class: str) -> tuple[str, ...]:
        """The transfer syntaxes the receiver accepted for `sop_class`."""
        return tuple(
            c.transfer_syntax
            for c in self.contexts
            if c.abstract_syntax == sop_class and c.result == "accepted"
        )


# Names for the transfer syntaxes the preflight proposes (PS3.6 Table A-1), for the findings.
TS_NAMES = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.4.50": "JPEG Baseline",
    "1.2.840.10008.1.2.4.51": "JPEG Extended",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.5": "RLE Lossless",
}


def ts_name(uid: str) -> str:
    """`JPEG Baseline (1.2.840.10008.1.2.4.50)`: the name a user knows and the UID to grep."""
    name = TS_NAMES.get(uid)
    return f"{name} ({uid})" if name else uid
