"""docs/findings.md documents every finding code of the catalogue, and its links work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reverseprobe.diagnosis.catalogue import CATALOGUE, HOP_LABELS

DOC = Path(__file__).resolve().parents[1] / "docs" / "findings.md"
TEXT = DOC.read_text(encoding="utf-8")
HEADING = re.compile(r"^(#{2,3}) (.+)$", re.MULTILINE)


def sections() -> dict[str, str]:
    """`## TITLE` -> its text up to the next `##` heading."""
    out = {}
    marks = [m for m in HEADING.finditer(TEXT) if m.group(1) == "##"]
    for m, nxt in zip(marks, [*marks[1:], None], strict=True):
        out[m.group(2).strip()] = TEXT[m.end() : nxt.start() if nxt else len(TEXT)]
    return out


def slug(title: str) -> str:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def test_every_code_has_a_section() -> None:
    missing = [c for c in CATALOGUE if c not in sections()]
    assert not missing, f"docs/findings.md lacks a `## CODE` section for {missing}"


def test_no_section_for_a_code_that_does_not_exist() -> None:
    code_like = [t for t in sections() if re.fullmatch(r"[A-Z][A-Z0-9_]+", t)]
    assert not [t for t in code_like if t not in CATALOGUE]


@pytest.mark.parametrize("code", list(CATALOGUE))
def test_section_says_severity_hop_why_confirm_and_fix(code: str) -> None:
    body = sections()[code]
    entry = CATALOGUE[code]
    head = body.strip().splitlines()[0]
    assert head.startswith(f"*{entry.severity.value}"), (code, head)
    assert f"hop: {HOP_LABELS[entry.hop].split(' ')[0]}" in head, (code, head)
    assert "**Fix:**" in body, code
    assert "**Why" in body, code
    assert "**Confirm" in body, code


def test_concrete_entries_for_common_pacs_and_routers() -> None:
    s = sections()
    entries = s["Entering this workstation in a PACS"]
    for needle in ('"DicomModalities"', "HostTable BEGIN", "AE list", "acrnema.map"):
        assert needle in entries, needle
    assert '"myscu" : [ "MYSCU", "203.0.113.7", 11112 ]' in entries
    assert "myscu = (MYSCU, 203.0.113.7, 11112)" in entries
    forward = s["Forwarding a port by hand on a router"]
    assert "external port **11112**" in forward and "internal (LAN) host" in forward


def test_internal_links_resolve() -> None:
    anchors = {slug(m.group(2)) for m in HEADING.finditer(TEXT)}
    links = re.findall(r"\]\(#([^)]+)\)", TEXT)
    assert links
    broken = sorted({link for link in links if link not in anchors})
    assert not broken, broken
