"""The router probe and the NAT/UPnP findings against a real miniupnpd in the namespace lab,
with `upnpc -l` / `upnpc -s` / `natpmpc` in the same test as independent readers."""

from __future__ import annotations

import pytest

from lab import Lab, home_net, requires_lab, requires_tools, start_ip_service
from netcheck_lab import (
    PORT,
    add_mapping,
    natpmpc_external_ip,
    run_check,
    start_storescp,
    upnpc_external_ip,
    upnpc_mappings,
)

pytestmark = [pytest.mark.lab, requires_lab, requires_tools("miniupnpd", "upnpc", "natpmpc")]


def test_mapping_to_this_pc() -> None:
    with Lab() as lab:
        net = home_net(lab)
        url = start_ip_service(net.inet, 8080)
        start_storescp(net.pc)
        add_mapping(net, net.pc, net.pc_ip)
        run = run_check(net.pc, [url])
        rt = run.probe("router")
        assert rt["status"] == "ok" and rt["igd_location"] == net.igd_url
        assert rt["connection_status"] == "Connected"
        assert rt["external_ip"] == upnpc_external_ip(net) == net.public_ip
        assert rt["natpmp_external_ip"] == natpmpc_external_ip(net.pc, net.router_lan_ip)
        m = rt["mapping"]
        assert upnpc_mappings(net)[("TCP", PORT)] == (m["internal_client"], m["internal_port"])
        assert (m["internal_client"], m["internal_port"]) == (net.pc_ip, PORT)
        assert run.codes["UPNP_MAPPING_OK"] == "pass"
        assert run.codes["NAT_DETECTED"] == "info"
        assert not {"NAT_DOUBLE", "UPNP_MAPPING_MISSING", "PUBLIC_IP_UNKNOWN"} & set(run.codes)
        entry = run.doc["pacs_entry"]
        assert entry["host"] == net.public_ip and entry["port"] == PORT
        assert "dynamic" in entry["note"]


def test_no_mapping() -> None:
    with Lab() as lab:
        net = home_net(lab)
        url = start_ip_service(net.inet, 8080)
        run = run_check(net.pc, [url])
        assert ("TCP", PORT) not in upnpc_mappings(net)
        rt = run.probe("router")
        assert rt["mapping_checked"] is True and rt["mapping"] is None
        f = run.finding("UPNP_MAPPING_MISSING")
        assert f["severity"] == "warn" and f"{net.pc_ip}:{PORT}" in f["fix"]
        assert "reverseprobe forward --upnp" in f["fix"]


def test_mapping_to_a_second_pc() -> None:
    with Lab() as lab:
        net = home_net(lab, second_pc=True)
        assert net.pc2 is not None
        url = start_ip_service(net.inet, 8080)
        add_mapping(net, net.pc2, net.pc2_ip)
        run = run_check(net.pc, [url])
        assert upnpc_mappings(net)[("TCP", PORT)] == (net.pc2_ip, PORT)
        assert run.probe("router")["mapping"]["internal_client"] == net.pc2_ip
        f = run.finding("UPNP_MAPPING_OTHER_HOST")
        assert f["severity"] == "fail" and net.pc2_ip in f["summary"]
        assert run.rc == 1


def test_carrier_grade_nat() -> None:
    with Lab() as lab:
        net = home_net(lab, cgnat=True)
        url = start_ip_service(net.inet, 8080)
        run = run_check(net.pc, [url])
        rt = run.probe("router")
        assert rt["external_ip"] == upnpc_external_ip(net) == ""  # miniupnpd: reserved WAN
        assert run.probe("public_ip")["address"] == net.public_ip  # the carrier's address
        f = run.finding("NAT_DOUBLE")
        assert f["severity"] == "fail" and "no external address" in f["summary"]
        assert "NAT_DETECTED" not in run.codes
        assert run.doc["pacs_entry"]["host"] == net.public_ip
        assert "double NAT" in run.doc["pacs_entry"]["note"]
        assert run.rc == 1


def test_no_upnp_daemon() -> None:
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        url = start_ip_service(net.inet, 8080)
        run = run_check(net.pc, [url])
        rt = run.probe("router")
        assert rt["status"] == "ok" and rt["igd_location"] is None
        assert rt["natpmp_result"] is None and rt["natpmp_error"]
        f = run.finding("UPNP_UNAVAILABLE")
        assert f["severity"] == "warn"  # behind NAT
        assert "by hand" in f["fix"] and net.router_lan_ip in f["fix"]
        assert run.codes["NAT_DETECTED"] == "info"


def test_natpmp_only_router() -> None:
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=True)
        url = start_ip_service(net.inet, 8080)
        run = run_check(net.pc, [url])
        rt = run.probe("router")
        assert rt["igd_location"] is None and rt["natpmp_result"] == 0
        assert rt["natpmp_external_ip"] == natpmpc_external_ip(net.pc, net.router_lan_ip)
        assert "forward --natpmp" in run.finding("UPNP_UNAVAILABLE")["summary"]


def test_no_upnp_flag_skips_the_router() -> None:
    with Lab() as lab:
        net = home_net(lab)
        url = start_ip_service(net.inet, 8080)
        run = run_check(net.pc, [url], extra=["--no-upnp"])
        assert run.probe("router")["status"] == "skipped"
        assert not any(c.startswith("UPNP_") for c in run.codes)
        # miniupnpd (-d) logs every SSDP search, SOAP call and NAT-PMP request: none came
        assert net.miniupnpd is not None
        log = net.miniupnpd.log()
        assert "starting NAT-PMP/PCP UPnP-IGD" in log
        assert "SSDP M-SEARCH" not in log and "SOAPAction" not in log
        assert "NAT-PMP request received" not in log


def test_silent_router() -> None:
    """SSDP and NAT-PMP dropped at the router (no answer, no ICMP): nothing claimed but that."""
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        net.router.nft(
            "table inet silent {\n chain input {\n  type filter hook input priority -10;"
            " policy accept;\n  udp dport { 1900, 5351 } drop\n }\n}\n"
        )
        url = start_ip_service(net.inet, 8080)
        run = run_check(net.pc, [url], timeout=8)  # the default: a loaded machine needs its margins
        rt = run.probe("router")
        assert rt["status"] == "ok" and rt["igd_location"] is None
        assert rt["natpmp_result"] is None and "no NAT-PMP answer" in rt["natpmp_error"]
        assert run.codes["UPNP_UNAVAILABLE"] == "warn"
        assert run.probe("public_ip")["address"] == net.public_ip
