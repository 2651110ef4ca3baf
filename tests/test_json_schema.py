"""Every command's real `--json` validated against its JSON Schema (src/reverseprobe/schemas/),
the contract of docs/reference.md: check and move-test and checklist in-process on loopback,
the reflector's HTTP answers from a real server, forward in the lab's home network. The schemas
themselves are checked, and shown to reject what breaks the contract."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from conftest import Procs, free_port, wait_listening
from dicom_fixtures import QrFixture, QrMode, make_study
from lab import Lab, home_net, requires_lab, requires_tools
from portmap_lab import forward_json
from reflector_helpers import probe, reflector, request
from reverseprobe import schemas
from reverseprobe.cli import main
from reverseprobe.diagnosis.catalogue import CATALOGUE
from reverseprobe.dicom.echo import quiet_pynetdicom
from reverseprobe.dicom.scp import VerificationScp
from reverseprobe.environment import Environment
from reverseprobe.model import Severity, Status
from reverseprobe.reflector.protocol import ErrorCode, probe_request_body

quiet_pynetdicom()

AET = "MYSCU"
REGISTRY: Registry = Registry().with_resources(
    (schemas.BASE + n, Resource.from_contents(schemas.load(n))) for n in schemas.names()
)


def validator(name: str, pointer: str = "") -> Draft202012Validator:
    """A validator for a schema file, or for one of its `$defs` (pointer "#/$defs/x")."""
    schema = {"$ref": schemas.BASE + f"{name}.schema.json{pointer}"}
    return Draft202012Validator(schema, registry=REGISTRY, format_checker=FormatChecker())


def errors(doc: Any, name: str, pointer: str = "") -> list[str]:
    return [f"{e.json_path}: {e.message[:300]}" for e in validator(name, pointer).iter_errors(doc)]


def assert_valid(doc: Any, name: str, pointer: str = "") -> None:
    errs = errors(doc, name, pointer)
    assert errs == [], "\n".join(errs)


def env() -> Environment:
    return Environment(
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        environ={},
        stdout_isatty=False,
        stderr_isatty=False,
    )


def run_json(argv: list[str]) -> tuple[int, dict[str, Any]]:
    """The CLI in-process; stdout must be exactly one JSON document."""
    e = env()
    rc = main([*argv, "--json"], e)
    out = e.stdout.getvalue()  # type: ignore[attr-defined]
    assert rc in (0, 1), e.stderr.getvalue()  # type: ignore[attr-defined]
    doc: dict[str, Any] = json.loads(out)
    return rc, doc


# --- the schemas themselves ------------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


@pytest.mark.parametrize("name", schemas.names())
def test_each_schema_is_a_valid_2020_12_schema_whose_refs_resolve(name: str) -> None:
    doc = schemas.load(name)
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == schemas.BASE + name
    resolver = REGISTRY.resolver(base_uri=doc["$id"])
    refs = set(_refs(doc))
    for ref in refs:
        resolver.lookup(ref)  # raises Unresolvable for a dangling $ref
    if name != "reflector.schema.json" and name not in (
        "report.schema.json",
        "finding.schema.json",
    ):
        assert "report.schema.json" in refs


def test_schemas_are_package_data() -> None:
    root = Path(schemas.__file__).parent
    assert sorted(p.name for p in root.glob("*.schema.json")) == sorted(schemas.names())
    with pytest.raises(KeyError):
        schemas.load("watch")


def test_every_catalogued_code_matches_the_code_pattern() -> None:
    finding = schemas.load("finding")
    pattern = finding["properties"]["code"]["pattern"]
    code_only = Draft202012Validator({"type": "string", "pattern": pattern})
    bad = [code for code in CATALOGUE if not code_only.is_valid(code)]
    assert bad == []
    assert not code_only.is_valid("listener_ok") and not code_only.is_valid("X")


def test_enums_in_the_schemas_are_the_models_enums() -> None:
    report = schemas.load("report")
    assert report["$defs"]["status"]["enum"] == [s.value for s in Status]
    assert schemas.load("finding")["$defs"]["severity"]["enum"] == [s.value for s in Severity]
    error = schemas.load("reflector")["$defs"]["error"]["properties"]["error"]
    assert error["enum"] == [c.value for c in ErrorCode]


# --- check, on loopback (nothing leaves the host) -------------------------------------------

CHECK = ["check", "--no-upnp", "--no-public-ip", "--timeout", "15"]


@pytest.fixture(scope="module")
def check_without_listener() -> dict[str, Any]:
    rc, doc = run_json([*CHECK, "--port", str(free_port()), "--require-listener"])
    assert rc == 1 and doc["verdict"] == "fail"
    return doc


def test_check_without_listener_follows_the_schema(check_without_listener: dict[str, Any]) -> None:
    assert_valid(check_without_listener, "check")
    assert "LISTENER_NONE" in {f["code"] for f in check_without_listener["findings"]}


@pytest.mark.skipif(not Path("/usr/bin/storescp").exists(), reason="dcmtk storescp not installed")
def test_check_with_a_dicom_listener_follows_the_schema(
    procs: Procs, port: int, tmp_path: Path
) -> None:
    """A real receiver (dcmtk storescp) on the port: sockets, the C-ECHO and its fingerprint."""
    procs.start(["/usr/bin/storescp", "-aet", AET, "-od", str(tmp_path), str(port)], "storescp")
    wait_listening(port)
    rc, doc = run_json([*CHECK, "--port", str(port), "--aet", AET, "--expect-process", "storescp"])
    assert_valid(doc, "check")
    listeners = doc["probes"]["listeners"]
    assert listeners["sockets"] and listeners["echoes"], listeners
    assert listeners["echoes"][0]["result"] == "accepted"
    assert "LISTENER_OK" in {f["code"] for f in doc["findings"]}
    assert doc["pacs_entry"]["aet"] == AET and rc == 0


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("schema",), 2, "schema"),
        (("verdict",), "ok", "verdict"),
        (("findings", 0, "code"), "listener-none", "code"),
        (("findings", 0, "severity"), "error", "severity"),
        (("probes", "router", "status"), "not measured", "status"),
        (("probes", "listeners", "port"), 0, "port"),
        (("pacs_entry", "port"), 70000, "port"),
        (("surprise",), 1, "surprise"),
    ],
)
def test_the_check_schema_rejects_a_broken_report(
    check_without_listener: dict[str, Any], path: tuple[Any, ...], value: Any, needle: str
) -> None:
    """The schema is no rubber stamp: each break of the contract is caught."""
    doc = copy.deepcopy(check_without_listener)
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errs = errors(doc, "check")
    assert errs and any(needle in e for e in errs), errs


def test_the_check_schema_needs_every_probe_and_no_timeout_fields(
    check_without_listener: dict[str, Any],
) -> None:
    doc = copy.deepcopy(check_without_listener)
    del doc["probes"]["firewall"]
    assert errors(doc, "check")
    doc = copy.deepcopy(check_without_listener)
    # A probe that ran out of time is the bare base object (runner.py): still valid...
    doc["probes"]["router"] = {"status": "timeout", "reason": "late", "elapsed_s": 8.0}
    assert_valid(doc, "check")
    # ...but an "ok" probe must carry what it measured.
    doc["probes"]["router"]["status"] = "ok"
    assert errors(doc, "check")


# --- move-test, against the pynetdicom Q/R fixture on loopback --------------------------------


def _move_test(pacs_port: int, pacs_aet: str, port: int, *more: str) -> tuple[int, dict[str, Any]]:
    return run_json(
        [
            "move-test",
            "--pacs",
            f"127.0.0.1:{pacs_port}",
            "--pacs-aet",
            pacs_aet,
            "--aet",
            AET,
            "--port",
            str(port),
            "--no-public-ip",
            "--grace",
            "1",
            "--timeout",
            "30",
            *more,
        ]
    )


def test_move_test_that_works_follows_the_schema(port: int) -> None:
    with QrFixture(make_study(2), destinations={AET: ("127.0.0.1", port)}) as pacs:
        rc, doc = _move_test(pacs.port, pacs.aet, port, "--try-cget")
    assert_valid(doc, "move-test")
    move = doc["probes"]["move"]
    assert (rc, move["final_status"], move["received"], move["completed"]) == (0, "success", 2, 2)
    assert [e["event"] for e in move["timeline"]][:2] == ["listening", "c-move-rq"]
    assert doc["probes"]["get"]["received"] == 2


def test_move_test_to_an_unknown_destination_follows_the_schema(port: int) -> None:
    with QrFixture(make_study(1), mode=QrMode.UNKNOWN) as pacs:
        rc, doc = _move_test(pacs.port, pacs.aet, port)
    assert_valid(doc, "move-test")
    assert rc == 1 and doc["probes"]["move"]["final_code"] == 0xA801
    assert "MOVE_DESTINATION_UNKNOWN" in {f["code"] for f in doc["findings"]}


def test_move_test_against_nothing_follows_the_schema(port: int) -> None:
    """No PACS listening: echo fails, find and move are skipped (bare probe objects)."""
    rc, doc = _move_test(free_port(), "NOBODY", port)
    assert_valid(doc, "move-test")
    assert rc == 1 and doc["probes"]["echo"]["tcp"] == "refused"
    assert doc["probes"]["move"]["status"] == "skipped"


# --- checklist: check for the site, move-test for a PACS, in-process on loopback ---------------


def test_checklist_json_follows_the_schema(tmp_path: Path, port: int) -> None:
    with QrFixture(make_study(1), destinations={AET: ("127.0.0.1", port)}) as pacs:
        site = tmp_path / "site.toml"
        site.write_text(
            f'[site]\nname = "Loopback"\naet = "{AET}"\nport = {port}\n'
            "upnp = false\npublic_ip = false\n\n"
            f'[[pacs]]\nname = "fixture"\nhost = "127.0.0.1"\nport = {pacs.port}\n'
            f'aet = "{pacs.aet}"\n'
        )
        rc, doc = run_json(["checklist", str(site), "--timeout", "60"])
    assert_valid(doc, "checklist")
    assert set(doc["probes"]) == {"check", "move-test:fixture"}
    assert doc["probes"]["move-test:fixture"]["probes"]["move"]["received"] == 1
    assert {f["target"] for f in doc["findings"]} == {"site", "fixture"}
    no_target = copy.deepcopy(doc)
    del no_target["findings"][0]["target"]
    assert errors(no_target, "checklist")
    assert rc == 0


# --- the reflector's HTTP answers, from a real server on loopback ------------------------------


def test_reflector_answers_follow_the_schema() -> None:
    with VerificationScp(0, host="127.0.0.1") as scp, reflector(burst=20) as r:
        health = request(r.url)
        ip = request(r.url, path="/v1/ip")
        body = probe_request_body([scp.port, free_port()], AET, "RPNONCE1", timeout=5.0)
        assert_valid(body, "reflector", "#/$defs/probe_request")
        answer = probe(r.url, body)
        bad = [
            probe(r.url, {"ports": [1, 2, 3, 4, 5]}),  # too-many-ports
            probe(r.url, {"ports": [80]}),  # port-not-allowed
            request(r.url, "POST", "/v1/probe", b"{", headers={"Content-Type": "application/json"}),
            request(r.url, "POST", "/v1/probe", b"{}", headers={"Content-Type": "text/plain"}),
            request(r.url, path="/nowhere"),
            request(r.url, "DELETE", "/v1/ip"),
        ]
    assert health.status == 200 and ip.status == 200 and answer.status == 200, answer.body
    assert_valid(health.json(), "reflector", "#/$defs/health")
    assert_valid(ip.json(), "reflector", "#/$defs/ip_answer")
    doc = answer.json()
    assert_valid(doc, "reflector", "#/$defs/probe_answer")
    assert [x["tcp"] for x in doc["results"]] == ["open", "refused"]
    for resp in bad:
        assert 400 <= resp.status < 500, resp.body
        assert_valid(resp.json(), "reflector", "#/$defs/error")
        assert_valid(resp.json(), "reflector")
    assert [resp.json()["error"] for resp in bad] == [
        "too-many-ports",
        "port-not-allowed",
        "bad-json",
        "unsupported-media-type",
        "not-found",
        "method-not-allowed",
    ]
    assert errors({"ip": "127.0.0.1", "host": "x"}, "reflector", "#/$defs/ip_answer")
    assert errors({"ports": [1, 1]}, "reflector", "#/$defs/probe_request")


def test_reflector_tls_answers_follow_the_schema() -> None:
    """ "tls": true towards a plain receiver: the answer's `tls` object (issue 15); the
    certificate-bearing answers are validated in tests/reflector/test_tls_reflector.py."""
    with VerificationScp(0, host="127.0.0.1") as scp, reflector(burst=20) as r:
        body = probe_request_body([scp.port], AET, "RPNONCE1", timeout=5.0, tls=True,
                                  tls_server_name="pc.example")  # fmt: skip
        assert_valid(body, "reflector", "#/$defs/probe_request")
        answer = probe(r.url, body)
    assert answer.status == 200, answer.body
    doc = answer.json()
    assert_valid(doc, "reflector", "#/$defs/probe_answer")
    assert doc["results"][0]["tls"]["problem"] == "not-tls"
    broken = copy.deepcopy(doc)
    broken["results"][0]["tls"]["certificate_pem"] = "not a certificate"
    assert errors(broken, "reflector", "#/$defs/probe_answer")
    assert errors({"ports": [1], "tls": "yes"}, "reflector", "#/$defs/probe_request")


# --- forward, in the lab's home network (miniupnpd on the router) -------------------------------


LAB_MARKS = (
    pytest.mark.lab,
    requires_lab,
    requires_tools("miniupnpd", "upnpc"),
)


def _lab(fn: Any) -> Any:
    for mark in LAB_MARKS:
        fn = mark(fn)
    return fn


def _state(lb: Lab) -> dict[str, str]:
    return {"REVERSEPROBE_STATE_DIR": str(lb.tmp / "state"), "NO_COLOR": "1"}


@_lab
def test_forward_json_follows_the_schema() -> None:
    with Lab() as lb:
        net = home_net(lb)
        docs = []
        for args in (
            ("--aet", AET),
            ("--list",),
            ("--dry-run", "--external-port", "12000"),
            ("--remove",),
            ("--remove",),
        ):
            rc, doc, err = forward_json(net.pc, *args, env=_state(lb))
            assert rc == 0, err
            docs.append(doc)
    for doc in docs:
        assert_valid(doc, "forward")
    actions = [d["probes"]["mapping"]["action"] for d in docs]
    assert actions == ["added", "listed", "would-add", "removed", "absent"]
    assert docs[0]["pacs_entry"]["aet"] == AET
    assert docs[1]["probes"]["router"]["mappings"][0]["external_port"] == 11112


@_lab
def test_forward_json_without_a_router_follows_the_schema() -> None:
    with Lab() as lb:
        net = home_net(lb, upnp=False, natpmp=False)
        rc, doc, err = forward_json(net.pc, "--auto", "--timeout", "8", env=_state(lb))
    assert rc == 1, err
    assert_valid(doc, "forward")
    assert doc["pacs_entry"] is None or doc["pacs_entry"]["host"] is None


# --- docs/reference.md names every option and schema -------------------------------------------

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


def _section(text: str, command: str) -> str:
    start = text.index(f"### `{command}")
    end = text.find("\n### ", start + 1)
    return text[start : end if end > 0 else len(text)]


def test_reference_documents_every_option_of_every_command() -> None:
    import argparse

    from reverseprobe.cli import build_parser

    text = REFERENCE.read_text()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for command, parser in sub.choices.items():
        section = _section(text, command)
        common = text[: text.index("### `check`")]  # --json, --timeout, --debug
        for action in parser._actions:
            for flag in action.option_strings:
                if flag != "-h" and f"`{flag}" not in section + common:
                    missing.append(f"{command} {flag}")
    assert missing == []


def test_reference_links_every_schema_file() -> None:
    text = REFERENCE.read_text()
    for name in schemas.names():
        assert f"(../src/reverseprobe/schemas/{name})" in text, name
    api = text[text.index("## `reverseprobe reflector`") :]
    assert [c.value for c in ErrorCode if f"`{c.value}`" not in api] == []
