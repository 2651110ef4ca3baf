"""The catalogue's texts (issue 10): every template renders, every field is a plain name the
rule supplies, and `make` refuses a missing or unexpected value instead of showing a
half-filled sentence."""

from __future__ import annotations

import ast
import string
from typing import Any

import pytest

from conftest import REPO
from reverseprobe.diagnosis.catalogue import CATALOGUE, DEFAULT, TEXTS, Text, make
from reverseprobe.model import Severity

PACKAGE = REPO / "src" / "reverseprobe"
DIAGNOSIS = PACKAGE / "diagnosis"

# Rule modules whose findings all come from the catalogue's templates (all of them: make()
# takes no literal text any more); firewall_fix.py builds commands, not findings.
CONVERTED = (
    "local.py",
    "network.py",
    "inbound.py",
    "nat.py",
    "upnp.py",
    "tls.py",
    "pacs.py",
    "entry.py",
    "path.py",
    "story.py",
    "causes.py",
    "virtual.py",
    "pacs_entry_check.py",
    "forward/announce.py",
    "forward/mapping.py",
    "forward/pinhole.py",
    "move.py",
    "receiver.py",
    "../commands/checklist_run.py",
    "../commands/forward.py",
    "../commands/forward_verify.py",
)
NOT_YET: set[tuple[str, str]] = set()
RESERVED = {"code", "summary", "fix", "variant", "severity", "target", "detail"}


class Anything:
    """A value every format spec and conversion accepts: the templates' own test."""

    def __format__(self, spec: str) -> str:
        return f"<{spec}>" if spec else "<v>"

    def __repr__(self) -> str:
        return "'<r>'"


def _variants() -> list[tuple[str, str, Text]]:
    return [(c, v, t) for c, vs in TEXTS.items() for v, t in vs.items()]


def test_texts_belong_to_catalogued_codes() -> None:
    assert set(TEXTS) <= set(CATALOGUE), set(TEXTS) - set(CATALOGUE)
    assert all(TEXTS[c] for c in TEXTS), "a code with an empty variant table"


@pytest.mark.parametrize(("code", "variant", "text"), _variants(), ids=lambda x: str(x)[:40])
def test_every_template_renders_with_plain_named_fields(
    code: str, variant: str, text: Text
) -> None:
    for template in (text.summary, text.fix):
        for _lit, name, spec, _conv in string.Formatter().parse(template):
            if name is None:
                continue
            assert name.isidentifier(), f"{code}/{variant}: field {name!r} is not a plain name"
            assert name not in RESERVED, f"{code}/{variant}: field {name!r} is make()'s own"
            assert "{" not in (spec or ""), f"{code}/{variant}: nested field in {spec!r}"
    values: dict[str, Any] = {f: Anything() for f in text.fields()}
    f = make(code, variant=variant, **values)
    assert f.summary and "{" not in f.summary.replace("{{", "")
    assert f.severity is CATALOGUE[code].severity
    assert f.detail == {}


def test_missing_and_unexpected_values_are_programming_errors() -> None:
    with pytest.raises(TypeError, match=r"missing values \['port'\]"):
        make("PORT_PRIVILEGED", dicom_port=11112)
    with pytest.raises(TypeError, match=r"unexpected values \['prot'\]"):
        make("PORT_PRIVILEGED", port=104, dicom_port=11112, prot=104)
    with pytest.raises(ValueError, match="no text variant 'nope'"):
        make("PORT_PRIVILEGED", variant="nope", port=104, dicom_port=11112)
    with pytest.raises(ValueError, match="no text variant 'default'"):
        make("LISTENER_NOT_DICOM", where="x", reason="y", port=1)  # has no default wording


def test_make_renders_values_and_keeps_detail_apart() -> None:
    f = make(
        "PORT_PRIVILEGED",
        severity=Severity.FAIL,
        target="pacs",
        detail={"port": 104},
        port=104,
        dicom_port=11112,
    )
    assert f.summary.startswith("Port 104 is below 1024: ")
    assert "Use port 11112 (the IANA-registered DICOM port)" in f.fix
    assert (f.severity, f.target, dict(f.detail)) == (Severity.FAIL, "pacs", {"port": 104})


def test_a_peer_value_is_never_read_as_a_template() -> None:
    """str.format parses the template only: a peer's braces stay characters (and are
    escaped where shown, textsafe.py)."""
    f = make("LISTENER_NOT_DICOM", variant="not_dicom", where="h:1", reason="{port}\x1b[2J", port=7)
    assert f.summary == "The program on h:1 is not a DICOM receiver: {port}\x1b[2J."


def _make_calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    out: list[tuple[str, ast.Call]] = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef):
            for n in ast.walk(fn):
                if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "make":
                    out.append((fn.name, n))
    return out


@pytest.mark.parametrize("module", CONVERTED)
def test_converted_rules_take_their_words_from_the_catalogue(module: str) -> None:
    tree = ast.parse((DIAGNOSIS / module).read_text())
    for fn, call in _make_calls(tree):
        if (module, fn) in NOT_YET:
            continue
        literal = len(call.args) > 1 or any(k.arg in ("summary", "fix") for k in call.keywords)
        assert not literal, f"{module}:{call.lineno} ({fn}) passes a literal text to make()"


def test_the_five_wordings_fixed_by_issue_10() -> None:
    """Sentences end, numbers agree, an address is an address, no markdown, a port says what
    it is for: the words go to a terminal, JSON and HTML alike."""
    from reverseprobe.diagnosis.story import CutShort, _not_measured

    f = make("PUBLIC_IP_UNKNOWN", variant="reason", reason="no service answered", gateway="gw")
    assert f.summary.endswith("public address (no service answered).")

    one = _not_measured([], {}, {"inbound": CutShort(0.7, 4.1)})[0]
    two = _not_measured([], {}, {"inbound": CutShort(0.7, 4.1), "router": CutShort(0.5, 6.6)})[0]
    assert "inbound needs about 4 s." in one.fix
    assert "inbound, router need about 7 s." in two.fix

    v = make("NAT_VIRTUAL", variant="not_reached", what="a Docker container", where="",
             port=11112, host_fix="publish it.", address="172.17.0.2", aet="MYSCU")  # fmt: skip
    assert "or MYSCU @ <public address>:11112 (with the router" in v.fix
    assert "the public address:" not in v.fix

    r = make("PACS_REJECTED_ASSOCIATION", variant="called_aet", pacs="P at h:104", what="C-ECHO",
             result_str="r", source_str="s", reason_str="x", result=1, source=1, reason=7,
             pacs_aet="P", register="AE title 'MYSCU'")  # fmt: skip
    assert "*" not in r.fix and "when the calling AE title is unknown" in r.fix

    cases: tuple[tuple[str, str, dict[str, Any]], ...] = (
        ("LISTENER_IPV4_ONLY", "measured", {}),
        ("LISTENER_IPV6_ONLY", DEFAULT, {"told": "v6only"}),
    )
    for code, variant, extra in cases:
        g = make(code, variant=variant, listing="storescp on :::104", port=104, **extra)
        assert "listen on port 104 on " in g.fix, g.fix
        assert not g.fix.rstrip(".").endswith("104"), g.fix


def test_make_takes_no_literal_text() -> None:
    """One way to word a finding: a sentence passed to make() is refused, not shown."""
    with pytest.raises(TypeError):
        make("MOVE_OK", "All 2 images arrived.")  # type: ignore[misc]


def test_a_variant_given_twice_raises() -> None:
    """Two words modules wording the same (code, variant) would lose one silently."""
    from reverseprobe.diagnosis.words import merged

    one = {"MOVE_OK": {DEFAULT: Text("a")}}
    assert merged(one, {"MOVE_OK": {"other": Text("b")}})["MOVE_OK"].keys() == {DEFAULT, "other"}
    with pytest.raises(ValueError, match="given twice"):
        merged(one, {"MOVE_OK": {DEFAULT: Text("b")}})


def test_the_catalogue_stays_readable() -> None:
    """The mechanism and the code table in catalogue.py, the words in diagnosis/words/: no
    file over 400 lines (issue 10: catalogue.py had grown to 1177)."""
    files = [DIAGNOSIS / "catalogue.py", *sorted((DIAGNOSIS / "words").glob("*.py"))]
    long = {f.name: n for f in files if (n := len(f.read_text().splitlines())) > 400}
    assert long == {}
