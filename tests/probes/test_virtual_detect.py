"""The virtual probe's verdict without namespaces (issue 13): a fake sysroot
(REVERSEPROBE_SYSROOT's view) and an injected default route and environment per platform; the
DNAT reader and docker-proxy's argv, pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from reverseprobe.probes.virtual import (
    assess,
    dnat_targets,
    docker_proxy_target,
    read_markers,
)

KUBE_SA = "var/run/secrets/kubernetes.io/serviceaccount"


def _root(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        if rel.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return tmp_path


PLATFORMS = [
    # (name, files below the sysroot, environment, address, gateway, kind, signals)
    ("docker", {".dockerenv": ""}, {}, "172.17.0.2", "172.17.0.1", "docker",
     {"/.dockerenv", "default route"}),
    ("docker-cgroup", {"proc/1/cgroup": "12:memory:/docker/0123abcd\n"}, {}, "172.17.0.3",
     "172.17.0.1", "docker", {"cgroup", "default route"}),
    ("podman", {"run/.containerenv": "engine=\"podman-4.3\"\n"}, {}, "10.88.0.5", "10.88.0.1",
     "podman", {"/run/.containerenv", "default route"}),
    ("wsl2", {"proc/sys/kernel/osrelease": "5.15.90.1-microsoft-standard-WSL2\n"}, {},
     "172.20.5.3", "172.20.0.1", "wsl2", {"kernel release", "default route"}),
    ("virtualbox", {"sys/class/dmi/id/sys_vendor": "innotek GmbH\n",
                    "sys/class/dmi/id/product_name": "VirtualBox\n"}, {},
     "10.0.2.15", "10.0.2.2", "virtualbox", {"DMI", "default route"}),
    ("vmware", {"sys/class/dmi/id/sys_vendor": "VMware, Inc.\n",
                "sys/class/dmi/id/product_name": "VMware Virtual Platform\n"}, {},
     "192.168.80.128", "192.168.80.2", "vmware", {"DMI", "default route"}),
    ("kubernetes", {KUBE_SA + "/": "", "proc/1/cgroup": "0::/kubepods/besteffort/pod1/c1\n"},
     {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, "10.244.1.5", "10.244.1.1", "kubernetes",
     {"KUBERNETES_SERVICE_HOST", "/" + KUBE_SA, "cgroup", "default route"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("files", "env", "addr", "gw", "kind", "signals"),
    [p[1:] for p in PLATFORMS],
    ids=[p[0] for p in PLATFORMS],
)
def test_each_platform_is_named_with_its_evidence(
    tmp_path: Path,
    files: dict[str, str],
    env: dict[str, str],
    addr: str,
    gw: str,
    kind: str,
    signals: set[str],
) -> None:
    r = assess(read_markers(_root(tmp_path, files), env), addr, gw)
    assert (r.verdict, r.kind) == ("virtual-nat", kind)
    assert {e.signal for e in r.evidence} == signals
    assert (r.address, r.gateway) == (addr, gw)


def test_nothing_is_none(tmp_path: Path) -> None:
    r = assess(read_markers(tmp_path, {}), "192.168.1.20", "192.168.1.1")
    assert (r.verdict, r.kind, r.evidence) == ("none", None, ())


def test_virtualbox_route_alone_names_it(tmp_path: Path) -> None:
    """10.0.2.15 via 10.0.2.2 is VirtualBox's NAT even with the DMI strings hidden."""
    r = assess(read_markers(tmp_path, {}), "10.0.2.15", "10.0.2.2")
    assert (r.verdict, r.kind) == ("virtual-nat", "virtualbox")


CONFLICTS = [
    # Docker's marker but VirtualBox's NAT route
    ({".dockerenv": ""}, "10.0.2.15", "10.0.2.2"),
    # a container marker and a LAN route: host networking or a bridge, not said
    ({".dockerenv": ""}, "192.168.1.20", "192.168.1.1"),
    # two platforms' markers
    ({".dockerenv": "", "sys/class/dmi/id/sys_vendor": "VMware, Inc."}, "172.17.0.2",
     "172.17.0.1"),
    # WSL2's kernel with Podman's marker and Docker's route
    ({"run/.containerenv": "", "proc/sys/kernel/osrelease": "5.15-microsoft-standard"},
     "172.17.0.2", "172.17.0.1"),
]  # fmt: skip


@pytest.mark.parametrize(("files", "addr", "gw"), CONFLICTS)
def test_conflicting_signals_could_not_tell(
    tmp_path: Path, files: dict[str, str], addr: str, gw: str
) -> None:
    r = assess(read_markers(_root(tmp_path, files), {}), addr, gw)
    assert r.verdict == "could-not-tell"
    assert len(r.evidence) >= 2  # every signal is shown, none dropped to force a verdict


def test_unreadable_and_huge_files_are_bounded(tmp_path: Path) -> None:
    big = "x" * (200 * 1024) + " docker "
    m = read_markers(_root(tmp_path, {"proc/1/cgroup": big}), {})
    assert len(m.cgroup) <= 64 * 1024  # the marker past the read bound is not seen
    r = assess(m, None, None)
    assert r.verdict == "none"


NFT = """table ip nat {
\tchain DOCKER {
\t\tiifname "docker0" counter packets 0 bytes 0 return
\t\tiifname != "docker0" meta l4proto tcp tcp dport 11112 counter dnat to 172.17.0.2:104
\t\tiifname != "docker0" meta l4proto udp udp dport 11112 counter dnat to 172.17.0.9:11112
\t\tiifname != "docker0" tcp dport 4242 dnat ip to 172.17.0.3
\t\ttcp dport 111120 dnat to 10.0.0.1:1
\t}
}
"""  # fmt: skip


def test_dnat_reader() -> None:
    assert dnat_targets(NFT, 11112) == [("172.17.0.2", 104)]  # the UDP rule is not TCP's
    assert dnat_targets(NFT, 4242) == [("172.17.0.3", 4242)]  # no port: the same port
    assert dnat_targets(NFT, 1111) == []  # 11112 and 111120 are other ports
    assert dnat_targets("", 11112) == []


def test_docker_proxy_argv() -> None:
    argv = [
        "/usr/bin/docker-proxy", "-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", "11112",
        "-container-ip", "172.17.0.2", "-container-port", "104",
    ]  # fmt: skip
    assert docker_proxy_target(argv) == ("172.17.0.2", "104")
    assert docker_proxy_target(["docker-proxy", "--container-ip=172.18.0.4"]) == (
        "172.18.0.4",
        "",
    )
    assert docker_proxy_target(["docker-proxy", "-container-ip"]) == ("?", "")  # no value
    assert docker_proxy_target([]) == ("?", "")
