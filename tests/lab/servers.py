"""Small servers for the lab's "internet" (a public-IP HTTP service, a TCP black hole) and
the clients that test reachability from a namespace (TCP connect, HTTP GET)."""

from __future__ import annotations

import sys
from pathlib import Path

from .namespaces import Lab, Namespace
from .procs import LabProcess

_IP_SERVICE = """\
import http.server, json, socket, sys

port, answer, key = int(sys.argv[1]), sys.argv[2] or None, sys.argv[3] or None
bind = sys.argv[4] if len(sys.argv) > 4 else "0.0.0.0"

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ip = answer or self.client_address[0]
        body = (json.dumps({key: ip}) if key else ip).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if key else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

class Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):  # IPv6 only, so an IPv4 service can share the port
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()

server = (Server6 if ":" in bind else http.server.ThreadingHTTPServer)((bind, port), Handler)
print("listening", flush=True)
server.serve_forever()
"""

_BLACKHOLE = """\
import socket, sys

srv = socket.create_server(("0.0.0.0", int(sys.argv[1])), backlog=64)
held = []
while True:  # accept and hold every connection, never send a byte
    held.append(srv.accept()[0])
"""


def _script(lab: Lab, name: str, text: str) -> Path:
    path = lab.tmp / name
    if not path.exists():
        path.write_text(text)
    return path


def start_ip_service(
    ns: Namespace,
    port: int,
    *,
    answer: str | None = None,
    json_key: str | None = None,
    host: str | None = None,
) -> str:
    """A public-IP HTTP service in `ns`: GET answers the client's address (or `answer`),
    as text or as {json_key: ip}. Returns its URL on `host` (default: the ns's first address).
    """
    script = _script(ns.lab, "ip_service.py", _IP_SERVICE)
    proc = ns.popen(
        [sys.executable, str(script), str(port), answer or "", json_key or ""],
        name=f"ip_service{port}",
    )
    ns.wait_tcp_listen(port, proc=proc)
    return f"http://{host or ns.addresses()[0]}:{port}/"


def start_ip_service6(ns: Namespace, port: int, host: str, *, answer: str | None = None) -> str:
    """The public-IP service of `start_ip_service` on IPv6 only ([::], IPV6_V6ONLY), so it
    can share `port` with the IPv4 one: GET answers the client's IPv6 address. URL on `host`.
    """
    script = _script(ns.lab, "ip_service.py", _IP_SERVICE)
    proc = ns.popen(
        [sys.executable, str(script), str(port), answer or "", "", "::"],
        name=f"ip_service6_{port}",
    )
    proc.wait_log(r"^listening$")
    return f"http://[{host}]:{port}/"


def start_blackhole(ns: Namespace, port: int) -> LabProcess:
    """A TCP listener in `ns` that accepts connections and never answers."""
    script = _script(ns.lab, "blackhole.py", _BLACKHOLE)
    proc = ns.popen([sys.executable, str(script), str(port)], name=f"blackhole{port}")
    ns.wait_tcp_listen(port, proc=proc)
    return proc


_TCP_CONNECT = """\
import socket, sys

host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    socket.create_connection((host, port), timeout=timeout).close()
    print("open")
except TimeoutError:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
except OSError as exc:
    print(f"error: {exc}")
"""

_HTTP_GET = """\
import sys, urllib.request

with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as resp:
    sys.stdout.write(resp.read().decode())
"""


def tcp_connect(ns: Namespace, host: str, port: int, timeout: float = 1.0) -> str:
    """Connect from `ns`: "open", "refused" (RST), "timeout" (dropped) or "error: ...".

    Inbound to a forwarded port, "refused" means no mapping and "timeout" a dropping firewall.
    """
    args = ["-c", _TCP_CONNECT, host, str(port), str(timeout)]
    return ns.run([sys.executable, *args], timeout=timeout + 10).stdout.strip()


def http_get(ns: Namespace, url: str, timeout: float = 5.0) -> str:
    """GET `url` from `ns` and return the body (LabCommandError on failure)."""
    return ns.run([sys.executable, "-c", _HTTP_GET, url, str(timeout)], timeout=timeout + 10).stdout
