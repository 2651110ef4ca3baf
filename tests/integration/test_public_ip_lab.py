"""The public address through the namespace lab's NAT: lab IP services that agree, disagree,
answer JSON, or black-hole; `check` inside the PC namespace."""

from __future__ import annotations

import pytest

from lab import Lab, home_net, requires_lab, start_blackhole, start_ip_service
from netcheck_lab import run_check

pytestmark = [pytest.mark.lab, requires_lab]


def test_services_agree_through_the_nat() -> None:
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        text = start_ip_service(net.inet, 8080)
        js = start_ip_service(net.inet, 8081, json_key="ip")
        run = run_check(net.pc, [text, js])
        pub = run.probe("public_ip")
        assert pub["status"] == "ok" and pub["consistent"] is True
        assert pub["address"] == net.public_ip  # the router's masquerade address, not the PC's
        assert [a["address"] for a in pub["answers"]] == [net.public_ip, net.public_ip]
        assert "PUBLIC_IP_INCONSISTENT" not in run.codes
        assert run.doc["pacs_entry"]["host"] == net.public_ip


def test_services_disagree() -> None:
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        honest = start_ip_service(net.inet, 8080)
        liar = start_ip_service(net.inet, 8081, answer="100.128.0.77")
        run = run_check(net.pc, [honest, liar])
        f = run.finding("PUBLIC_IP_INCONSISTENT")
        assert f["severity"] == "warn"
        assert net.public_ip in f["summary"] and "100.128.0.77" in f["summary"]
        assert run.probe("public_ip")["consistent"] is False
        assert "disagree" in run.doc["pacs_entry"]["note"]


def test_black_holed_services_end_within_the_timeout() -> None:
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        start_blackhole(net.inet, 8443)
        hole = f"http://{net.inet_ip}:8443/"
        run = run_check(net.pc, [hole], timeout=4)  # run_check's subprocess timeout: no hang
        pub = run.probe("public_ip")
        assert pub["status"] == "fail" and pub["address"] is None
        assert pub["answers"][0]["error"] in ("timed out", "no answer by the deadline")
        assert run.codes["PUBLIC_IP_UNKNOWN"] == "warn"
        assert run.doc["pacs_entry"]["host"] is None  # behind NAT, address unknown
        # Too short a deadline to wait for one HTTP answer: not measured, not "unknown".
        short = run_check(net.pc, [hole], timeout=1.5)
        assert short.probe("public_ip")["status"] == "timeout"
        assert "not measured in time" in short.probe("public_ip")["reason"]
        assert "PUBLIC_IP_UNKNOWN" not in short.codes


def test_no_public_ip_flag_sends_nothing() -> None:
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        url = start_ip_service(net.inet, 8080)
        run = run_check(net.pc, [url], extra=["--no-public-ip", "--no-upnp"])
        assert run.probe("public_ip")["status"] == "skipped"
        svc = next(p for p in lab.processes if "ip_service" in p.log_path.name)
        assert "GET" not in svc.log()  # http.server logs each request it gets
        assert run.doc["pacs_entry"]["host"] == net.pc_ip
