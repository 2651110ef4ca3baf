"""The words of the finding codes: `Text(summary, fix)` templates per code and variant, one
module per area, merged into `catalogue.TEXTS`.

A code's words go to the module of the rules that make its findings: words/local.py for
diagnosis/local.py (listener, port, route, the receiver's TLS), words/network.py for
network.py, inbound.py and story.py (public address, NAT, UPnP, dial-back, firewall),
words/pacs.py for pacs.py, pacs_entry_check.py, virtual.py and the checklist,
words/forward.py for `forward`, words/move.py for move.py, words/receiver.py for
receiver.py. A code used by two areas has variants in both (merged; a variant given twice
raises at import).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT = "default"  # the variant of a code with one wording


@dataclass(frozen=True)
class Text:
    """One wording of a code: summary and fix as str.format templates with named fields."""

    summary: str
    fix: str = ""

    def fields(self) -> frozenset[str]:
        """Every field the two templates name (a field with an attribute or index counts by
        its whole name, which tests/diagnosis/test_catalogue.py rejects: rules pass plain
        values)."""
        return frozenset(
            name
            for template in (self.summary, self.fix)
            for _lit, name, _spec, _conv in string.Formatter().parse(template)
            if name is not None
        )


def merged(*tables: Mapping[str, Mapping[str, Text]]) -> Mapping[str, Mapping[str, Text]]:
    """One table from the per-area ones; a (code, variant) given twice would silently lose
    a wording, so it raises."""
    out: dict[str, dict[str, Text]] = {}
    for table in tables:
        for code, variants in table.items():
            into = out.setdefault(code, {})
            twice = into.keys() & variants.keys()
            if twice:
                raise ValueError(f"{code}: variant(s) {sorted(twice)} given twice")
            into.update(variants)
    return out
