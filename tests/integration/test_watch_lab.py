"""`reverseprobe watch` in the lab's home network (issue 14): the router's WAN address changes
(as when the ISP hands out a new one), the lab's public-IP service then reports the new one,
and watch says so, with the new PACS entry, and exits (--exit-on-change). Its Prometheus
endpoint, bound to loopback inside the PC's namespace, is scraped while it runs.

watch runs only inside the lab's PC namespace, with --no-upnp, the lab's --ip-service, a
--count bound and --exit-on-change, so it always ends.
"""

from __future__ import annotations

import json

import pytest

from lab import Lab, home_net, http_get, requires_lab, start_ip_service
from netcheck_lab import PORT, start_storescp
from portmap_lab import Held, upnpc_held

pytestmark = [pytest.mark.lab, requires_lab]

NEW_WAN = "100.128.0.9"
METRICS = 9464


def test_watch_sees_a_new_public_address_and_serves_metrics() -> None:
    with Lab() as lab:
        net = home_net(lab)
        url = start_ip_service(net.inet, 8080)
        start_storescp(net.pc)
        watch = net.pc.python_popen(
            ["-m", "reverseprobe", "watch", "--port", str(PORT), "--aet", "MYSCU",
             "--no-upnp", "--ip-service", url, "--interval", "1", "--count", "60",
             "--exit-on-change", "--json", "--timeout", "5",
             "--metrics", f"127.0.0.1:{METRICS}"],
            name="watch",
        )  # fmt: skip
        watch.wait_log(r'"event": "check".*"public_ip": "100\.128\.0\.2"', timeout=60)

        body = http_get(net.pc, f"http://127.0.0.1:{METRICS}/metrics")
        assert 'reverseprobe_public_address_info{address="100.128.0.2"} 1.0' in body
        assert 'reverseprobe_listener_up{port="11112"} 1.0' in body
        assert 'reverseprobe_reachable{port="11112"} -1.0' in body  # no reflector: not tested
        assert "reverseprobe_checks_total" in body
        assert 'reverseprobe_probe_duration_seconds{probe="public_ip"}' in body

        # the ISP gives the router another address: masquerade follows it
        net.router.ip(["addr", "del", f"{net.router_wan_ip}/24", "dev", net.router_wan_if])
        net.router.ip(["addr", "add", f"{NEW_WAN}/24", "dev", net.router_wan_if])
        net.router.ip(["route", "replace", "default", "via", net.inet_ip])
        assert http_get(net.pc, url).strip() == NEW_WAN  # the lab's service sees it

        watch.wait_log(r'"event": "change"', timeout=60)
        try:
            rc = watch.proc.wait(timeout=30)
        finally:
            watch.stop()
        assert rc == 1, watch.log()  # --exit-on-change
        events = [json.loads(x) for x in watch.log().splitlines() if x.startswith("{")]
        change = next(e for e in events if e["event"] == "change")
        assert change["what"] == "public_ip"
        assert (change["old"], change["new"]) == ("100.128.0.2", NEW_WAN)
        assert change["pacs_entry"] == f"MYSCU @ {NEW_WAN}:{PORT}"
        assert "stale" in change["message"] and "dynamic-DNS" in change["message"]
        assert "Traceback" not in watch.log()


def test_watch_renews_a_leased_mapping_of_ours_and_leaves_others() -> None:
    """miniupnpd holds a short-leased mapping described as reverseprobe's to this PC, and one
    of somebody else's on another port: watch renews ours (as forward --keep does), and never
    touches the other."""
    with Lab() as lab:
        net = home_net(lab)
        for port, desc in ((PORT, "reverseprobe MYSCU DICOM port 11112"), (4242, "game")):
            res = net.upnpc(["-e", desc, "-a", net.pc_ip, str(port), str(port), "TCP", "20"])
            assert res.returncode == 0 and "is redirected to" in res.stdout, res.stdout
        assert (upnpc_held(net, PORT) or Held(0, "", "", 0, "", 10**6)).lease <= 20
        env = {"REVERSEPROBE_STATE_DIR": str(lab.tmp / "state")}
        res = net.pc.python(
            ["-m", "reverseprobe", "watch", "--port", str(PORT), "--aet", "MYSCU",
             "--no-public-ip", "--interval", "1", "--count", "1", "--json", "--timeout", "8"],
            check=False, timeout=90, env=env,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        events = [json.loads(x) for x in res.stdout.splitlines()]
        renewed = [e for e in events if e["event"] == "renewed"]
        assert len(renewed) == 1 and "renewed" in renewed[0]["message"], events
        ours, other = upnpc_held(net, PORT), upnpc_held(net, 4242)
        assert ours is not None and ours.lease > 100  # renewed with a 600 s lease
        assert other is not None and other.lease <= 20 and other.description == "game"
