"""Is this PC a container or VM behind its host's NAT, and is the port on this PC sent on to a
container (issue 13)? Each claim carries its evidence; where the signals conflict the verdict is
"could-not-tell", never a guess.

Signals: marker files (/.dockerenv, /run/.containerenv, the Kubernetes service-account folder,
cgroup paths), the environment (KUBERNETES_SERVICE_HOST), the kernel release (WSL2 says
"microsoft"), DMI vendor strings (VirtualBox, VMware) and the shape of the default route (the
well-known NAT subnets: Docker 172.17.0.0/16 via .1, Podman 10.88.0.0/16 via .1, VirtualBox
10.0.2.15 via 10.0.2.2, VMware NAT's .2 gateway). Files are read below `root`
(REVERSEPROBE_SYSROOT), so the tests can give a namespace its own view.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import shutil
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reverseprobe.config import CheckConfig
from reverseprobe.model import Status
from reverseprobe.model.virtual import Evidence, VirtualResult
from reverseprobe.runner import Deadline, Probe

NFT_BUDGET_S = 2.0
_MAX_READ = 64 * 1024

# (kind, network, gateway or None for "any .1/.2 in it") of the NAT networks platforms make.
_NAT_SHAPES: tuple[tuple[str, str, str | None], ...] = (
    ("virtualbox", "10.0.2.0/24", "10.0.2.2"),
    ("docker", "172.17.0.0/16", "172.17.0.1"),
    ("podman", "10.88.0.0/16", "10.88.0.1"),
)
_KUBE_SA = "var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class Markers:
    """What the files and the environment say, read once (pure input of `assess`)."""

    dockerenv: bool = False
    containerenv: bool = False
    kube_sa: bool = False
    kube_env: str | None = None
    cgroup: str = ""
    osrelease: str = ""
    dmi: str = ""  # sys_vendor + product_name


def read_markers(root: Path, environ: Mapping[str, str]) -> Markers:
    return Markers(
        dockerenv=(root / ".dockerenv").exists(),
        containerenv=(root / "run/.containerenv").exists(),
        kube_sa=(root / _KUBE_SA).is_dir(),
        kube_env=environ.get("KUBERNETES_SERVICE_HOST"),
        cgroup=_read(root / "proc/1/cgroup") + _read(root / "proc/self/cgroup"),
        osrelease=_read(root / "proc/sys/kernel/osrelease"),
        dmi=_read(root / "sys/class/dmi/id/sys_vendor")
        + " "
        + _read(root / "sys/class/dmi/id/product_name"),
    )


def _read(p: Path) -> str:
    try:
        with p.open("rb") as f:
            return f.read(_MAX_READ).decode("utf-8", "replace")
    except OSError:
        return ""


def marker_evidence(m: Markers) -> list[Evidence]:
    out: list[Evidence] = []
    if m.dockerenv:
        out.append(Evidence("/.dockerenv", "docker", "present"))
    if m.containerenv:
        out.append(Evidence("/run/.containerenv", "podman", "present"))
    if m.kube_env:
        out.append(Evidence("KUBERNETES_SERVICE_HOST", "kubernetes", m.kube_env[:64]))
    if m.kube_sa:
        out.append(Evidence("/" + _KUBE_SA, "kubernetes", "present"))
    for word, kind in (("kubepods", "kubernetes"), ("docker", "docker"), ("libpod", "podman")):
        if re.search(rf"\b{word}\b|/{word}[-/]", m.cgroup):
            out.append(Evidence("cgroup", kind, word))
            break
    if "microsoft" in m.osrelease.lower():
        out.append(Evidence("kernel release", "wsl2", m.osrelease.strip()[:80]))
    dmi = m.dmi.lower()
    if "virtualbox" in dmi or "innotek" in dmi:
        out.append(Evidence("DMI", "virtualbox", m.dmi.strip()[:80]))
    elif "vmware" in dmi:
        out.append(Evidence("DMI", "vmware", m.dmi.strip()[:80]))
    return out


def route_evidence(address: str | None, gateway: str | None, kinds: set[str]) -> list[Evidence]:  # noqa: PLR0911 - one return per virtual network kind (WSL2, VMware, direct)
    """What the default route's shape says. A well-known NAT subnet points to that platform;
    with a marker naming WSL2 or VMware, a private 172.16/12 or .2 gateway is theirs."""
    if not address or not gateway:
        return []
    try:
        a, g = ipaddress.ip_address(address), ipaddress.ip_address(gateway)
    except ValueError:
        return []
    value = f"{address} via {gateway}"
    for kind, net, gw in _NAT_SHAPES:
        n = ipaddress.ip_network(net)
        if a in n and g in n and (gw is None or str(g) == gw):
            return [Evidence("default route", kind, value, nat=True)]
    if "wsl2" in kinds and a in ipaddress.ip_network("172.16.0.0/12"):
        return [Evidence("default route", "wsl2", value, nat=True)]
    if "vmware" in kinds and a.is_private and str(g).endswith(".2"):
        return [Evidence("default route", "vmware", value, nat=True)]
    if kinds and a.is_private:
        # a container/VM whose route is not its platform's NAT: host networking or bridged
        return [Evidence("default route", "direct", value, nat=False)]
    return []


def assess(m: Markers, address: str | None, gateway: str | None) -> VirtualResult:
    """The verdict from the markers and the route (pure)."""
    ev = marker_evidence(m)
    kinds = {e.kind for e in ev}
    ev += route_evidence(address, gateway, kinds)
    route = next((e for e in ev if e.signal == "default route"), None)
    platform = kinds - {"direct"}
    if route is not None and route.nat:
        platform.add(route.kind)
    kind = next(iter(platform)) if len(platform) == 1 else None
    if kinds - {"kubernetes"} and "kubernetes" in kinds:  # a pod runs in a container runtime
        kind = "kubernetes" if len(platform - {"docker", "podman"}) == 1 else None
    if not ev:
        verdict = "none"
    elif route is not None and route.nat and (not kinds or route.kind in kinds):
        # the route is a platform's NAT, and no marker names another platform
        verdict = "virtual-nat" if kind is not None else "could-not-tell"
    elif route is not None and route.nat:
        verdict = "could-not-tell"  # e.g. Docker's subnet inside a VirtualBox guest
    elif kinds - {"docker", "podman", "direct"} == {"kubernetes"}:
        # a pod: its own private route is the pod network, reached from outside the cluster
        # only through a Service (NodePort) or hostPort
        verdict = "virtual-nat"
    elif route is not None and not route.nat:
        verdict = "could-not-tell"  # a marker, but the route is no known NAT: host networking?
    else:
        verdict = "could-not-tell"
    return VirtualResult(
        status=Status.OK,
        verdict=verdict,
        kind=kind,
        address=address,
        gateway=gateway,
        evidence=tuple(ev),
    )


_DNAT = re.compile(
    r"dport (\d+)\b[^\n]*?dnat (?:ip )?to ([0-9.]+)(?::(\d+))?"
)  # nftables and iptables-nft (Docker's DOCKER chain) spell it alike


def dnat_targets(ruleset: str, port: int) -> list[tuple[str, int]]:
    """(address, port) that a DNAT rule for TCP `port` sends connections on to (pure)."""
    out = []
    for line in ruleset.splitlines():
        mt = _DNAT.search(line)
        if mt and int(mt.group(1)) == port and "udp" not in line:
            out.append((mt.group(2), int(mt.group(3) or port)))
    return out


def _nft_ruleset(budget: float) -> str:
    nft = shutil.which("nft") or ("/usr/sbin/nft" if Path("/usr/sbin/nft").exists() else None)
    if nft is None or budget <= 0:
        return ""
    try:
        res = subprocess.run(
            [nft, "list", "ruleset"], capture_output=True, text=True, timeout=budget, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return res.stdout[:1_000_000] if res.returncode == 0 else ""


def docker_proxy_target(argv: list[str]) -> tuple[str, str]:
    """(container address, container port) from docker-proxy's argv (pure): it is started as
    `docker-proxy -proto tcp -host-ip H -host-port P -container-ip C -container-port Q`;
    "?" / "" where a flag is missing or has no value."""

    def flag(name: str) -> str | None:
        for i, a in enumerate(argv):
            if a in (name, "-" + name) and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith((name + "=", "-" + name + "=")):
                return a.split("=", 1)[1]
        return None

    return flag("-container-ip") or "?", flag("-container-port") or ""


def _docker_proxy(port: int) -> list[Evidence]:
    """docker-proxy owning the port names the container in its argv (-container-ip)."""
    try:
        import psutil

        found = []
        for c in psutil.net_connections(kind="tcp"):
            if c.status != psutil.CONN_LISTEN or not c.laddr or c.laddr.port != port or not c.pid:
                continue
            p = psutil.Process(c.pid)
            if "docker-proxy" not in p.name():
                continue
            ip, cport = docker_proxy_target(p.cmdline())
            found.append(Evidence("process", "container-proxy", f"docker-proxy -> {ip}:{cport}"))
        return found
    except Exception:  # noqa: BLE001 - not visible without rights: no evidence
        return []


def probe_virtual(
    port: int, deadline: Deadline, *, root: Path, environ: Mapping[str, str]
) -> VirtualResult:
    from reverseprobe.routes import ROUTE_PROBE_V4 as _ROUTE_PROBE_V4
    from reverseprobe.routes import default_gateway, route_source

    gw, _if = default_gateway()
    src = route_source(_ROUTE_PROBE_V4, socket.AF_INET)
    res = assess(read_markers(root, environ), src, gw)
    cev = _docker_proxy(port)
    targets = dnat_targets(_nft_ruleset(deadline.share(NFT_BUDGET_S)), port)
    cev += [Evidence("nftables", "dnat", f"tcp {port} -> {a}:{p}") for a, p in targets]
    addr, cport = targets[0] if targets else (None, None)
    for e in cev:
        mt = re.search(r"-> ([0-9.]+):(\d+)", e.value)
        if addr is None and mt:
            addr, cport = mt.group(1), int(mt.group(2))
    return dataclasses.replace(
        res, container_address=addr, container_port=cport, container_evidence=tuple(cev)
    )


def check_probe(cfg: CheckConfig) -> Probe:
    """The `virtual` probe of `check`."""
    root = Path(cfg.sysroot or "/")
    env = dict(cfg.virtual_env)
    return lambda d: probe_virtual(cfg.port, d, root=root, environ=env)
