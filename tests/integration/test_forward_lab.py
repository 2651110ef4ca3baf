"""`reverseprobe forward` in the pc namespace of a real home network (miniupnpd in the router),
each result read back with an independent client: `upnpc -l` and the router's nftables rules."""

from __future__ import annotations

import signal
import time

import pytest

from lab import Lab, home_net, requires_lab, requires_tools
from portmap_lab import codes, forward_json, router_nat_rules, upnpc_held, upnpc_list

pytestmark = [pytest.mark.lab, requires_lab, requires_tools("miniupnpd", "upnpc", "natpmpc")]


def _env(lab: Lab) -> dict[str, str]:
    return {"REVERSEPROBE_STATE_DIR": str(lab.tmp / "state"), "NO_COLOR": "1"}


def _finding(doc, code):
    return next(f for f in doc["findings"] if f["code"] == code)


def test_upnp_create_verify_rerun_list_remove():
    with Lab() as lab:
        net = home_net(lab)
        env = _env(lab)
        rc, doc, err = forward_json(net.pc, "--aet", "MYSCU", env=env)
        assert rc == 0, err
        assert codes(doc) == {"UPNP_MAPPING_OK"}
        m = doc["probes"]["mapping"]
        assert (m["action"], m["verified"], m["internal_client"]) == ("added", True, net.pc_ip)
        assert doc["pacs_entry"] == {"aet": "MYSCU", "host": net.public_ip, "port": 11112,
                                     "note": doc["pacs_entry"]["note"]}  # fmt: skip
        held = upnpc_held(net, 11112)
        assert (
            held is not None and held.internal_client == net.pc_ip and held.internal_port == 11112
        )
        assert held.description == "reverseprobe MYSCU DICOM port 11112"
        assert f"dport 11112 dnat ip to {net.pc_ip}:11112" in router_nat_rules(net)

        # again: once the finite default lease (3600 s) has counted down (the router says so:
        # a rerun within the same second finds it whole, and rightly leaves it unchanged), it is
        # renewed in place
        end = time.monotonic() + 10
        while (h := upnpc_held(net, 11112)) is not None and h.lease >= 3600:
            assert time.monotonic() < end, h
            time.sleep(0.2)
        rc, doc, _ = forward_json(net.pc, "--aet", "MYSCU", env=env)
        assert rc == 0 and doc["probes"]["mapping"]["action"] == "renewed"
        rc, doc, _ = forward_json(net.pc, "--aet", "MYSCU", "--lease", "0", env=env)
        assert rc == 0 and doc["probes"]["mapping"]["lease_requested"] == 0
        rc, doc, _ = forward_json(net.pc, "--aet", "MYSCU", "--lease", "0", env=env)  # idempotent
        assert rc == 0 and doc["probes"]["mapping"]["action"] == "unchanged"
        assert [h.external_port for h in upnpc_list(net)] == [11112]

        rc, doc, _ = forward_json(net.pc, "--list", env=env)
        assert rc == 0 and codes(doc) == {"ROUTER_MAPPINGS", "UPNP_MAPPING_OK"}
        listed = doc["probes"]["router"]["mappings"]
        assert [(x["external_port"], x["internal_client"]) for x in listed] == [(11112, net.pc_ip)]
        assert _finding(doc, "ROUTER_MAPPINGS")["detail"]["count"] == 1

        rc, doc, _ = forward_json(net.pc, "--remove", "--dry-run", env=env)
        assert rc == 0 and doc["probes"]["mapping"]["action"] == "would-remove"
        assert upnpc_held(net, 11112) is not None

        rc, doc, _ = forward_json(net.pc, "--remove", env=env)
        assert rc == 0 and doc["probes"]["mapping"]["action"] == "removed"
        assert upnpc_held(net, 11112) is None
        assert "dport 11112" not in router_nat_rules(net)

        rc, doc, _ = forward_json(net.pc, "--remove", env=env)
        assert rc == 0 and doc["probes"]["mapping"]["action"] == "absent"

        rc, doc, _ = forward_json(net.pc, "--dry-run", "--external-port", "12000", env=env)
        assert rc == 0 and doc["probes"]["mapping"]["action"] == "would-add"
        assert upnpc_list(net) == []


def test_mapping_of_a_second_pc_is_never_touched():
    with Lab() as lab:
        net = home_net(lab, second_pc=True)
        env = _env(lab)
        net.upnpc(["-a", net.pc2_ip, "11112", "11112", "TCP"], ns=net.pc2, check=True)
        before = upnpc_held(net, 11112)
        assert before is not None and before.internal_client == net.pc2_ip

        rc, doc, _ = forward_json(net.pc, env=env)
        assert rc == 1 and "UPNP_MAPPING_OTHER_HOST" in codes(doc)
        assert net.pc2_ip in _finding(doc, "UPNP_MAPPING_OTHER_HOST")["summary"]
        assert doc["probes"]["mapping"]["action"] == "held-by-other"
        assert doc["pacs_entry"] is None

        rc, doc, _ = forward_json(net.pc, "--force", env=env)  # secure mode: 606 on the delete
        assert rc == 1 and "UPNP_MAPPING_OTHER_HOST" in codes(doc)
        assert doc["probes"]["mapping"]["error_code"] == 606

        rc, doc, _ = forward_json(net.pc, "--remove", env=env)
        assert rc == 1 and doc["probes"]["mapping"]["action"] == "held-by-other"

        after = upnpc_held(net, 11112)
        assert after is not None and after.internal_client == net.pc2_ip
        assert after.description == before.description
        assert f"dnat ip to {net.pc2_ip}:11112" in router_nat_rules(net)


def test_router_rules_refuse_port_104_then_allow_it():
    with Lab() as lab:
        net = home_net(lab)
        env = _env(lab)
        rc, doc, _ = forward_json(net.pc, "--port", "104", "--aet", "MYSCU", env=env)
        assert rc == 1
        f = _finding(doc, "UPNP_MAPPING_MISSING")
        assert f["severity"] == "fail" and f["detail"]["error_code"] == 606
        assert "11112" in f["fix"] and "http://192.168.2.1/" in f["fix"]
        assert "external port 104, protocol TCP, internal address 192.168.2.2" in f["fix"]
        assert upnpc_held(net, 104) is None

        net.start_miniupnpd(allow_ports=("104", "1024-65535"))
        rc, doc, _ = forward_json(net.pc, "--port", "104", env=env)
        assert rc == 0 and codes(doc) == {"UPNP_MAPPING_OK", "PORT_PRIVILEGED"}
        assert upnpc_held(net, 104) is not None


def test_double_nat_exits_1_with_manual_steps():
    with Lab() as lab:
        net = home_net(lab, cgnat=True)
        rc, doc, _ = forward_json(net.pc, env=_env(lab))
        assert rc == 1 and {"NAT_DOUBLE", "UPNP_MAPPING_MISSING"} <= codes(doc)
        assert "outer router" in _finding(doc, "NAT_DOUBLE")["fix"]
        assert doc["probes"]["mapping"]["error_code"] == 501
        assert doc["probes"]["router"]["external_ip"] is None
        assert upnpc_list(net) == []


def test_no_igd_exits_1_within_the_timeout():
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        for mode in ("--upnp", "--natpmp", "--auto"):
            t0 = time.monotonic()
            rc, doc, _ = forward_json(net.pc, mode, "--timeout", "2", env=_env(lab))
            wall = time.monotonic() - t0
            assert rc == 1 and codes(doc) == {"UPNP_UNAVAILABLE"}, mode
            assert "192.168.2.1" in _finding(doc, "UPNP_UNAVAILABLE")["fix"]
            assert doc["elapsed_s"] <= 2.5, mode  # the --timeout contract (plus margin)
            assert wall < 10  # interpreter start-up included


def test_pcp_create_renew_remove_and_auto_fallback():
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=True)
        env = _env(lab)
        rc, doc, _ = forward_json(net.pc, "--natpmp", "--aet", "MYSCU", env=env)
        assert rc == 0 and codes(doc) == {"UPNP_MAPPING_OK"}
        m = doc["probes"]["mapping"]
        assert m["via"] == "pcp" and m["action"] == "added" and m["lease_granted"] > 0
        assert doc["pacs_entry"]["host"] == net.public_ip
        assert f"dport 11112 dnat ip to {net.pc_ip}:11112" in router_nat_rules(net)

        rc, doc, _ = forward_json(net.pc, "--natpmp", env=env)  # same nonce: a renewal
        assert rc == 0 and doc["probes"]["mapping"]["action"] == "renewed"
        assert router_nat_rules(net).count("dport 11112") == 1

        rc, doc, _ = forward_json(net.pc, "--natpmp", "--remove", env=env)
        assert rc == 0 and doc["probes"]["mapping"]["action"] == "removed"
        assert "dport 11112" not in router_nat_rules(net)

        rc, doc, _ = forward_json(net.pc, "--auto", "--port", "12000", env=env)
        assert rc == 0 and doc["probes"]["mapping"]["via"] == "pcp"
        assert doc["probes"]["router"]["tried"][0].startswith("upnp: no IGD answered")
        assert f"dport 12000 dnat ip to {net.pc_ip}:12000" in router_nat_rules(net)


def test_keep_renews_and_ctrl_c_removes_what_it_made():
    with Lab() as lab:
        net = home_net(lab)
        env = _env(lab)
        p = net.pc.python_popen(
            ["-m", "reverseprobe", "forward", "--keep", "--lease", "4", "--port", "12345"],
            env=env,
        )
        p.wait_log(r"renewed TCP .*12345", timeout=20)
        held = upnpc_held(net, 12345)
        assert held is not None and held.internal_client == net.pc_ip and held.lease <= 4
        p.signal(signal.SIGINT)
        p.proc.wait(15)
        assert p.returncode == 130, p.log()
        assert "removed the mapping of TCP port 12345" in p.log()
        assert "Traceback" not in p.log()
        assert upnpc_held(net, 12345) is None

        # A mapping that was there before --keep is left as it was found on Ctrl-C.
        rc, _, _ = forward_json(net.pc, "--port", "12346", "--lease", "0", env=env)
        assert rc == 0
        p = net.pc.python_popen(
            ["-m", "reverseprobe", "forward", "--keep", "--lease", "4", "--port", "12346"],
            env=env,
        )
        p.wait_log(r"stays as it was found", timeout=20)
        p.signal(signal.SIGINT)
        p.proc.wait(15)
        assert p.returncode == 130, p.log()
        held = upnpc_held(net, 12346)
        assert held is not None and held.lease > 600_000  # not shortened to --keep's lease


def test_verify_through_a_real_reflector():
    with Lab() as lab:
        net = home_net(lab)
        env = _env(lab)
        rc, doc, _ = forward_json(net.pc, "--verify", env=env)
        assert rc == 0 and "INBOUND_NOT_TESTED" in codes(doc)

        refl = net.inet.python_popen(
            ["-m", "reverseprobe", "reflector", "--listen", "0.0.0.0:8470"], name="reflector"
        )
        net.inet.wait_tcp_listen(8470, proc=refl)
        url = f"http://{net.inet_ip}:8470"
        rc, doc, err = forward_json(net.pc, "--verify", "--reflector", url, env=env)
        assert rc == 0, (doc, err, refl.log())
        assert {"UPNP_MAPPING_OK", "INBOUND_OK"} <= codes(doc)
        assert doc["probes"]["inbound"]["nonce_seen"] is True


def test_forward_announces_before_acting_and_from_is_honoured_or_undone():
    """The line on stderr and the report's `announcement` say what, where, from where and for
    how long; --from is either held by the router (read back) or the mapping is removed."""
    with Lab() as lab:
        net = home_net(lab)
        env = _env(lab)
        rc, doc, err = forward_json(net.pc, "--aet", "MYSCU", "--dry-run", env=env)
        assert rc == 0, err
        said = doc["announcement"]
        assert said["text"] in err and said["dry_run"] is True
        assert (said["lease_s"], said["remote_host"], said["internal_client"]) == (
            3600,
            None,
            net.pc_ip,
        )
        assert "from any address" in said["text"] and "for 3600 s" in said["text"]

        rc, doc, err = forward_json(net.pc, "--aet", "MYSCU", "--from", "203.0.113.7", env=env)
        assert (
            "only from 203.0.113.7" in err
            and "only from 203.0.113.7" in doc["announcement"]["text"]
        )
        m = doc["probes"]["mapping"]
        held = upnpc_list(net)
        if rc == 0:  # the router keeps NewRemoteHost
            assert m["remote_host"] == "203.0.113.7" and [h.external_port for h in held] == [11112]
        else:  # it cannot (726) or ignored it: nothing open to any source is left behind
            assert rc == 1 and codes(doc) == {"UPNP_MAPPING_MISSING"}
            assert held == [], held
        print("miniupnpd --from:", rc, m.get("remote_host"), m.get("reason"))
