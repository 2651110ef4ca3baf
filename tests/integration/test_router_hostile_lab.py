"""A hostile "router" in the lab: a fake SSDP responder and IGD web server that answer with
garbage, trickle, flood or never answer. `check --timeout 3` in the PC must still produce its
report, claim no mapping, and say why the router could not be read."""

from __future__ import annotations

import sys

import pytest

from lab import HomeNet, Lab, home_net, requires_lab, start_ip_service
from netcheck_lab import run_check

pytestmark = [pytest.mark.lab, requires_lab]

FAKE_ROUTER = r'''
import http.server, socket, sys, threading, time

mode, lan_ip = sys.argv[1], sys.argv[2]
HTTP_PORT = 5000
DESC = b"""<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor>
</specVersion><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>fake</friendlyName><deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId><controlURL>/ctl/IPConn</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>"""


def ssdp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 1900))
    print("ssdp ready", flush=True)
    while True:
        data, src = s.recvfrom(4096)
        if mode == "garbage-ssdp":
            s.sendto(bytes(range(256)) * 4, src)
            s.sendto(b"HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1"
                     b"\r\nLOCATION: http://127.0.0.1:5000/rootDesc.xml\r\n\r\n", src)
            continue
        st = b"urn:schemas-upnp-org:device:InternetGatewayDevice:1"
        s.sendto(b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: " + st +
                 b"\r\nUSN: uuid:fake::" + st + b"\r\nLOCATION: http://" + lan_ip.encode() +
                 b":5000/rootDesc.xml\r\nSERVER: fake/1.0 UPnP/1.1\r\n\r\n", src)


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def head(self, length):
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def do_GET(self):
        try:
            if mode == "slow-desc":
                self.head(len(DESC))
                for b in DESC:
                    self.wfile.write(bytes([b])); self.wfile.flush(); time.sleep(0.5)
            elif mode == "huge-desc":
                self.head(200_000_000)
                for _ in range(3000):
                    self.wfile.write(b"<a>" * 20000)
            elif mode == "bad-xml":
                bad = b"<root><device><deviceType>&&&<<<</root" + b"x" * 20
                self.head(len(bad)); self.wfile.write(bad)
            else:
                self.head(len(DESC)); self.wfile.write(DESC)
        except OSError:
            pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            if mode == "slow-soap":
                time.sleep(60)
            elif mode == "garbage-soap":
                body = b"<s:Envelope><s:Body><u:GetStatusInfoResponse>" + b"\xff\x00<" * 5000
                self.head(len(body)); self.wfile.write(body)
            else:
                self.head(0)
        except OSError:
            pass


threading.Thread(target=ssdp, daemon=True).start()
srv = http.server.ThreadingHTTPServer(("0.0.0.0", HTTP_PORT), H)
srv.daemon_threads = True
srv.serve_forever()
'''


def start_fake_router(net: HomeNet, mode: str) -> None:
    script = net.lab.tmp / "fake_router.py"
    script.write_text(FAKE_ROUTER)
    proc = net.router.popen(
        [sys.executable, str(script), mode, net.router_lan_ip], name=f"fake-{mode}"
    )
    net.router.wait_tcp_listen(5000, proc=proc)
    net.router.wait_udp_bound(1900, proc=proc)


@pytest.mark.parametrize(
    "mode", ["garbage-ssdp", "slow-desc", "huge-desc", "bad-xml", "slow-soap", "garbage-soap"]
)
def test_hostile_router_never_crashes_or_holds_check(mode: str) -> None:
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        url = start_ip_service(net.inet, 8080)
        start_fake_router(net, mode)
        run = run_check(net.pc, [url], timeout=3)  # its subprocess timeout catches a hang
        rt = run.probe("router")
        assert rt["status"] in ("ok", "timeout"), rt
        assert not {"UPNP_MAPPING_OK", "UPNP_MAPPING_MISSING", "UPNP_MAPPING_OTHER_HOST"} & set(
            run.codes
        )
        if rt["status"] == "ok":
            assert rt["mapping_checked"] is False
            assert rt["igd_location"] is None or rt["upnp_error"]
            assert "UPNP_UNAVAILABLE" in run.codes
        # the rest of the report is intact
        assert run.probe("public_ip")["address"] == net.public_ip
        assert run.codes["NAT_DETECTED"] == "info"
