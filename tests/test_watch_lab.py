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
