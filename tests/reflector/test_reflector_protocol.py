"""The reflector's contract, pure: request validation, the dial-back address, answers."""

from __future__ import annotations

import contextlib
import ipaddress
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reverseprobe.config.validate import parse_port_ranges
from reverseprobe.dicom.echo import DicomResult, EchoResult, Rejection
from reverseprobe.dicom.tcp import TcpState
from reverseprobe.reflector import answers as a
from reverseprobe.reflector import protocol as p

ALLOW = parse_port_ranges("104,11112,1024-65535")


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def refused(req: bytes, status: int = 400) -> p.RequestError:
    with pytest.raises(p.RequestError) as info:
        p.parse_probe_request(req, ALLOW)
    assert info.value.status == status
    return info.value


# --- requests ------------------------------------------------------------------------------


def test_valid_request() -> None:
    req = p.parse_probe_request(
        body({"ports": [11112, 104], "called_aet": "MYSCU", "calling_aet": "RPNONCE"}), ALLOW
    )
    assert req == p.ProbeRequest((11112, 104), "MYSCU", "RPNONCE", None, ())


def test_defaults_for_aets() -> None:
    req = p.parse_probe_request(body({"ports": [11112]}), ALLOW)
    assert (req.called_aet, req.calling_aet) == (p.DEFAULT_CALLED_AET, "REVERSEPROBE")


def test_a_key_naming_another_host_is_ignored_not_used() -> None:
    req = p.parse_probe_request(
        body({"ports": [11112], "host": "10.0.0.9", "ip": "192.0.2.1", "target": "x"}), ALLOW
    )
    assert req.ignored == ("host", "ip", "target")
    assert not any("10.0.0.9" in str(v) for v in vars(req).values() if v != req.ignored)


def test_five_ports_are_refused() -> None:
    err = refused(body({"ports": [1024, 1025, 1026, 1027, 1028]}))
    assert err.code is p.ErrorCode.TOO_MANY_PORTS


def test_port_outside_the_allow_list_is_refused() -> None:
    err = refused(body({"ports": [11112, 22]}), 403)
    assert err.code is p.ErrorCode.PORT_NOT_ALLOWED
    assert "22" in err.message and "104,11112,1024-65535" in err.message


@pytest.mark.parametrize(
    "ports",
    [[], None, "11112", [0], [65536], [True], [11112.0], ["11112"], [11112, 11112], {"a": 1}],
)
def test_bad_ports(ports: Any) -> None:
    doc = {"ports": ports} if ports is not None else {}
    assert refused(body(doc)).code is p.ErrorCode.BAD_REQUEST


@pytest.mark.parametrize(
    "aet", ["", "   ", "A" * 17, "BACK\\SLASH", "TAB\tX", "ÄÖ", 5, None, ["X"]]
)
def test_bad_ae_titles(aet: Any) -> None:
    err = refused(body({"ports": [11112], "called_aet": aet}))
    assert err.code is p.ErrorCode.BAD_REQUEST


@pytest.mark.parametrize("timeout", [0, 0.1, 61, -1, "5", True])
def test_bad_timeouts(timeout: Any) -> None:
    refused(body({"ports": [11112], "timeout": timeout}))


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"",
        b"null",
        b"[11112]",
        b'"x"',
        b"\xff\xfe{}",
        b'{"ports": [11112], "ports": [104]}',
        b'{"ports": [NaN]}',
        b'{"ports": [Infinity]}',
        b"[" * 3000 + b"]" * 3000,
        b'{"ports": [1' + b"0" * 5000 + b"]}",
    ],
)
def test_malformed_bodies(raw: bytes) -> None:
    err = refused(raw)
    assert err.code in (p.ErrorCode.BAD_JSON, p.ErrorCode.BAD_REQUEST)
    assert "Traceback" not in err.message and "\n" not in err.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=p.BODY_LIMIT))
def test_any_bytes_give_a_request_or_a_4xx(raw: bytes) -> None:
    try:
        p.parse_probe_request(raw, ALLOW)
    except p.RequestError as exc:
        assert 400 <= exc.status < 500


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=12), kids),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "ports": _json | st.lists(st.integers(-5, 70000), max_size=6),
            "called_aet": _json,
            "calling_aet": _json,
            "timeout": _json,
            "host": _json,
        },
    )
)
def test_any_json_object_gives_a_valid_request_or_a_4xx(doc: dict[str, Any]) -> None:
    try:
        req = p.parse_probe_request(body(doc), ALLOW)
    except p.RequestError as exc:
        assert 400 <= exc.status < 500
        return
    assert 1 <= len(req.ports) <= p.MAX_PORTS
    assert all(p.port_allowed(port, ALLOW) for port in req.ports)
    assert 1 <= len(req.called_aet) <= 16 and 1 <= len(req.calling_aet) <= 16


# --- whom to dial --------------------------------------------------------------------------

TRUST = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    assert p.client_address("198.51.100.7", ["203.0.113.9"], TRUST) == "198.51.100.7"
    assert p.client_address("198.51.100.7", ["203.0.113.9"], ()) == "198.51.100.7"


def test_trusted_proxy_gives_the_rightmost_untrusted_entry() -> None:
    # The client wrote "1.1.1.1" itself; our proxies appended what they saw.
    xff = ["1.1.1.1, 203.0.113.9", "10.1.1.1"]
    assert p.client_address("10.0.0.2", xff, TRUST) == "203.0.113.9"


def test_trusted_proxy_chain_all_trusted_gives_the_leftmost() -> None:
    assert p.client_address("10.0.0.2", ["10.9.9.9, 10.1.1.1"], TRUST) == "10.9.9.9"


@pytest.mark.parametrize(
    ("entry", "want"),
    [
        ("203.0.113.9:4711", "203.0.113.9"),
        ("[2001:db8::5]:80", "2001:db8::5"),
        ("2001:db8::5", "2001:db8::5"),
        ('"203.0.113.9"', "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
    ],
)
def test_forwarded_for_entry_forms(entry: str, want: str) -> None:
    assert p.client_address("10.0.0.2", [entry], TRUST) == want


@pytest.mark.parametrize("xff", [["unknown"], ["203.0.113.9, evil.example"], ["300.1.1.1"]])
def test_garbage_forwarded_for_from_a_trusted_proxy_is_refused(xff: list[str]) -> None:
    with pytest.raises(p.RequestError) as info:
        p.client_address("10.0.0.2", xff, TRUST)
    assert info.value.code is p.ErrorCode.BAD_FORWARDED_FOR


def test_trusted_proxy_without_forwarded_for_is_refused() -> None:
    with pytest.raises(p.RequestError):
        p.client_address("10.0.0.2", [], TRUST)


def test_ipv4_mapped_peer_is_unwrapped() -> None:
    assert p.client_address("::ffff:198.51.100.7", [], ()) == "198.51.100.7"


# --- answers -------------------------------------------------------------------------------


def echo_result(**kw: Any) -> EchoResult:
    base: dict[str, Any] = {
        "host": "198.51.100.7",
        "port": 11112,
        "tcp": TcpState.OPEN,
        "result": DicomResult.ACCEPTED,
        "called_aet": "MYSCU",
        "calling_aet": "RPX",
        "implementation_class_uid": "1.2.276.0.7230010.3.0.3.6.7",
        "implementation_version_name": "OFFIS_DCMTK_367",
        "elapsed_ms": 12.3,
    }
    base.update(kw)
    return EchoResult(**base)


def test_answer_round_trip() -> None:
    rej = Rejection(1, 1, 7, "Rejected Permanent", "Service User", "Called AE not recognised")
    results = [
        echo_result(),
        echo_result(
            port=104, result=DicomResult.REJECTED, reject=rej, implementation_class_uid=None
        ),
        echo_result(port=2000, tcp=TcpState.TIMEOUT, result=DicomResult.NOT_TESTED),
        echo_result(port=2001, result=DicomResult.NO_ANSWER, detail="line1\nline2"),
    ]
    doc = json.loads(json.dumps(a.probe_answer("198.51.100.7", results, ["host"])))
    assert doc["ignored"] == ["host"]
    assert doc["results"][3]["detail"] == "line1"
    ans = a.parse_probe_answer(doc, [11112, 104, 2000, 2001])
    assert ans.observed_ip == "198.51.100.7"
    p11112 = ans.for_port(11112)
    assert p11112 is not None
    assert p11112.fingerprint == ("1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367")
    r104 = ans.for_port(104)
    assert r104 is not None and r104.reject is not None and r104.reject.reason == 7
    assert ans.for_port(2000).tcp is TcpState.TIMEOUT  # type: ignore[union-attr]
    assert ans.for_port(2001).dicom is DicomResult.NO_ANSWER  # type: ignore[union-attr]


def test_answer_missing_the_asked_port_is_invalid() -> None:
    doc = a.probe_answer("198.51.100.7", [echo_result()])
    with pytest.raises(a.AnswerError):
        a.parse_probe_answer(doc, [104])


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        {"observed_ip": "not an ip", "results": []},
        {"observed_ip": "1.2.3.4", "results": "x"},
        {"observed_ip": "1.2.3.4", "results": [{"port": 11112, "tcp": "maybe"}]},
        {"observed_ip": "1.2.3.4", "results": [{"port": 11112, "tcp": "open", "dicom": 1}]},
        {"observed_ip": "1.2.3.4", "results": [{"port": True, "tcp": "open", "dicom": {}}]},
        {"observed_ip": 7, "results": []},
    ],
)
def test_garbage_answers(doc: Any) -> None:
    with pytest.raises(a.AnswerError):
        a.parse_probe_answer(doc, [11112])


@settings(max_examples=300, deadline=None)
@given(_json)
def test_any_json_answer_parses_or_raises_answer_error(doc: Any) -> None:
    with contextlib.suppress(a.AnswerError):
        a.parse_probe_answer(doc, [11112])
    with contextlib.suppress(a.AnswerError):
        a.parse_ip_answer(doc)
    a.parse_error_answer(doc)


def test_untrusted_text_in_answers_is_cleaned_and_cut() -> None:
    doc = a.probe_answer("1.2.3.4", [echo_result()])
    doc["results"][0]["dicom"]["implementation_version_name"] = "\x1b[31mRED" + "X" * 100
    ans = a.parse_probe_answer(doc, [11112])
    name = ans.results[0].implementation_version_name
    assert name is not None and "\x1b" not in name and len(name) <= 16
