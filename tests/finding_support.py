"""A finding with literal words, for render and story tests that need a finding of some
code but not its rule's words (the rules themselves have one way: catalogue.make)."""

from __future__ import annotations

from typing import Any

from reverseprobe.diagnosis.catalogue import CATALOGUE
from reverseprobe.model import Finding


def literal(code: str, summary: str, fix: str = "", **detail: Any) -> Finding:
    """A finding of a catalogued code at its default severity, with the given words."""
    return Finding(
        code=code, severity=CATALOGUE[code].severity, summary=summary, fix=fix, detail=detail
    )
