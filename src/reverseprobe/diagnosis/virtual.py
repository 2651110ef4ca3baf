"""NAT layers on this PC (issue 13), pure: a container or VM behind its host's NAT
(NAT_VIRTUAL), the port sent on to a container on this PC (LISTENER_IN_CONTAINER), and what the
path's hops add: a hop in 100.64.0.0/10 (RFC 6598) is carrier-grade NAT even where no router
answers UPnP or NAT-PMP. A private hop alone is never called a NAT: hospitals route private
networks; the hops are given as evidence, not as a verdict."""

from __future__ import annotations

from collections.abc import Mapping

from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis.catalogue import make
from reverseprobe.model import Finding, ProbeResult, Severity, Status
from reverseprobe.model.inbound import InboundResult
from reverseprobe.model.virtual import PathResult, VirtualResult

KIND_NAMES = {
    "docker": "a Docker container",
    "podman": "a Podman container",
    "kubernetes": "a Kubernetes pod",
    "wsl2": "WSL2 (NAT mode)",
    "virtualbox": "a VirtualBox VM with NAT networking",
    "vmware": "a VMware VM with NAT networking",
}


def host_fix(kind: str | None, port: int) -> str:
    """What to do on the host so that connections reach the port inside (per platform)."""
    fixes = {
        "docker": f"publish the port: `docker run -p {port}:{port} ...` (compose: `ports: "
        f'["{port}:{port}"]`), or run with `--network host`',
        "podman": f"publish the port: `podman run -p {port}:{port} ...`, or `--network host`",
        "kubernetes": f"expose the pod: a Service of type NodePort (or hostPort: {port} in the "
        "pod spec), and a NetworkPolicy that admits the PACS's address",
        "wsl2": "on Windows, as administrator: `netsh interface portproxy add v4tov4 "
        f"listenport={port} listenaddress=0.0.0.0 connectport={port} "
        "connectaddress=<WSL address>` plus a Windows firewall rule, or switch WSL to mirrored "
        "networking (`networkingMode=mirrored` in .wslconfig)",
        "virtualbox": f"add a port-forwarding rule (Settings > Network > Adapter > Port "
        f"Forwarding: TCP host {port} -> guest {port}; `VBoxManage modifyvm VM --natpf1 "
        f'"dicom,tcp,,{port},,{port}"`), or switch the adapter to bridged',
        "vmware": f"add a NAT port forward (Virtual Network Editor > NAT Settings: TCP {port} "
        "-> the VM), or use a bridged adapter",
    }
    return fixes.get(kind or "", f"forward TCP {port} from the host into this container or VM")


def rules(probes: Mapping[str, ProbeResult], cfg: CheckConfig) -> list[Finding]:
    out: list[Finding] = []
    vr = probes.get("virtual")
    path = probes.get("path")
    path_r = path if isinstance(path, PathResult) and path.status is Status.OK else None
    if isinstance(vr, VirtualResult) and vr.status is Status.OK:
        inbound = probes.get("inbound")
        out += virtual_rules(
            vr, cfg, path_r, _way_in_closed(inbound), reached=_dial_back_reached(inbound)
        )
        out += container_rules(vr, cfg.port)
    if path_r is not None:
        out += path_rules(path_r, probes)
    return out


def _way_in_closed(p: ProbeResult | None) -> bool:
    if not isinstance(p, InboundResult) or p.main is None:
        return False
    return str(getattr(p.main.tcp, "value", p.main.tcp)) in ("refused", "timeout")


def _dial_back_reached(p: ProbeResult | None) -> bool:
    """The reflector's dial-back proved to reach this listener (nonce or fingerprint): the
    host already sends the port on, so its fix is done, not to do."""
    from reverseprobe.diagnosis.inbound import Verdict, judge

    return isinstance(p, InboundResult) and judge(p) is Verdict.OK


def _evidence(vr: VirtualResult) -> list[dict[str, object]]:
    return [
        {"signal": e.signal, "kind": e.kind, "value": e.value, "nat": e.nat} for e in vr.evidence
    ]


def virtual_rules(
    vr: VirtualResult,
    cfg: CheckConfig,
    path: PathResult | None,
    closed: bool,
    *,
    reached: bool = False,
) -> list[Finding]:
    if vr.verdict != "virtual-nat":
        return []
    port = cfg.port
    what = KIND_NAMES.get(vr.kind or "", "a container or VM")
    hops = [h.address for h in path.hops if h.address] if path is not None else []
    aet = cfg.aet or "<your AE title>"
    return [
        make(
            "NAT_VIRTUAL",
            variant=("reached" if reached else "not_reached") + (":closed" if closed else ""),
            severity=Severity.FAIL if closed else None,
            detail={
                "kind": vr.kind,
                "address": vr.address,
                "gateway": vr.gateway,
                "evidence": _evidence(vr),
                "hops": hops,
                "dial_back_reached": reached,
                "pacs_entry": {"aet": aet, "host": "<host's address>", "port": port},
            },
            what=what,
            where=f" ({vr.address} via {vr.gateway})" if vr.address else "",
            port=port,
            host_fix=host_fix(vr.kind, port),
            address=vr.address or "this address",
            aet=aet,
        )
    ]


def container_rules(vr: VirtualResult, port: int) -> list[Finding]:
    if not vr.container_evidence:
        return []
    addr = vr.container_address or "a container"
    cport = vr.container_port or port
    ev = [{"signal": e.signal, "kind": e.kind, "value": e.value} for e in vr.container_evidence]
    return [
        make(
            "LISTENER_IN_CONTAINER",
            detail={
                "container_address": vr.container_address,
                "container_port": cport,
                "evidence": ev,
            },
            port=port,
            address=addr,
            container_port=cport,
        )
    ]


def path_rules(path: PathResult, probes: Mapping[str, ProbeResult]) -> list[Finding]:
    """A hop in 100.64/10 shows carrier-grade NAT; it feeds NAT_DOUBLE only where the router's
    own reading did not already say so, and where this network's public address is not the
    router's own (an ISP may route shared space inside its network)."""
    from reverseprobe.diagnosis.nat import public_view

    shared = path.shared_hops
    if not shared:
        return []
    v = public_view(probes)
    if v.double_nat or v.local:
        return []
    if v.router_external and v.address and v.router_external == v.address:
        return []
    hops = [{"ttl": h.ttl, "address": h.address, "class": h.klass} for h in path.hops]
    return [
        make(
            "NAT_DOUBLE",
            variant="path",
            detail={
                "source": "path",
                "hops": hops,
                "private_before_public": list(path.private_before_public),
            },
            toward=path.target,
            shared=", ".join(shared),
        )
    ]
