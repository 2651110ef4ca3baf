"""Re-record the Linux firewall samples of this folder (root, nft, iptables-nft and ufw needed).

Each ruleset is loaded into a throw-away network namespace; ufw runs there too, inside a private
mount namespace whose /etc/ufw is a copy, so the host's firewall and ufw settings are never
touched. Usage: sudo python tests/samples/firewall/record.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

NFT_MIXED = """\
table inet filter {
  set allowed { type inet_service; elements = { 22, 11112 } }
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    ct state invalid drop
    iifname "lo" accept
    ip protocol icmp accept
    tcp dport 22 accept
    ip saddr 10.0.0.0/8 tcp dport 4242 accept
    tcp dport { 80, 443, 8000-8100 } accept
    tcp dport @allowed counter accept
    tcp dport vmap { 104 : drop, 4243 : accept }
    th dport 5000 reject with tcp reset
    jump sub
    meta l4proto tcp tcp dport != 11112 drop
  }
  chain sub { udp dport 53 accept; tcp dport 6000 accept; return; }
}
table ip6 v6only {
  chain input { type filter hook input priority -10; policy drop; }
}
"""

IPTABLES = [
    "-P INPUT DROP",
    "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A INPUT -i lo -j ACCEPT",
    "-A INPUT -p tcp --dport 22 -j ACCEPT",
    "-A INPUT -p tcp -m multiport --dports 80,443,8000:8100 -j ACCEPT",
    "-N MYCHAIN",
    "-A MYCHAIN -p tcp --dport 4242 -s 10.0.0.0/8 -j ACCEPT",
    "-A MYCHAIN -p tcp --dport 104 -j REJECT --reject-with tcp-reset",
    "-A INPUT -j MYCHAIN",
    "-A INPUT -p tcp ! --dport 11112 -m comment --comment 'not DICOM' -j DROP",
    "-A INPUT -m recent --name x --rcheck -j DROP",
]

UFW = [
    "--force enable",
    "allow 22/tcp",
    "deny 11112/tcp",
    "reject 104",
    "allow from 10.0.0.0/8 to any port 4242 proto tcp",
    "allow 6000:6007/tcp",
    "limit 2222/tcp",
    "allow in on eth0 to any port 8080 proto tcp",
    "deny from 203.0.113.7",
]


def netns(name: str, *argv: str, input: str | None = None) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", name, *argv],
        input=input,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


# issue 15: the IPv6 samples (an ip6 table beside an ip one; an inet table split by family;
# ip6tables-nft with a policy drop beside an iptables accept)
NFT_IP6 = """\
table ip v4f {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 11112 accept
  }
}
table ip6 v6f {
  chain input {
    type filter hook input priority 0; policy accept;
    ct state established,related accept
    iifname "lo" accept
    meta l4proto ipv6-icmp accept
    tcp dport 11112 drop
  }
}
"""
NFT_INET_NFPROTO6 = """\
table inet hostfw {
  chain input {
    type filter hook input priority 0; policy accept;
    ct state established,related accept
    iifname "lo" accept
    meta nfproto ipv6 tcp dport 11112 drop
    ip saddr 10.0.0.0/8 tcp dport 104 accept
    ip6 saddr 2a0c::/29 tcp dport 11112 accept
  }
}
"""
IP6TABLES = [
    "iptables -A INPUT -p tcp --dport 11112 -j ACCEPT",
    "ip6tables -P INPUT DROP",
    "ip6tables -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "ip6tables -A INPUT -i lo -j ACCEPT",
    "ip6tables -A INPUT -p ipv6-icmp -j ACCEPT",
    "ip6tables -A INPUT -s 2a0c::/29 -p tcp --dport 104 -j ACCEPT",
    "ip6tables -A INPUT -p tcp --dport 22 -j ACCEPT",
]


def record_ipv6(name: str) -> None:
    for ruleset, out in (
        (NFT_IP6, "nft_ip6_table.json"),
        (NFT_INET_NFPROTO6, "nft_inet_nfproto6.json"),
    ):
        netns(name, "nft", "-f", "-", input=ruleset)
        (HERE / out).write_text(netns(name, "nft", "-j", "list", "ruleset"))
        netns(name, "nft", "flush", "ruleset")
    for cmd in IP6TABLES:
        netns(name, "sh", "-c", cmd)
    (HERE / "ip6tables_save.txt").write_text(netns(name, "ip6tables-save"))
    (HERE / "ip6tables_nft.json").write_text(netns(name, "nft", "-j", "list", "ruleset"))
    netns(name, "nft", "flush", "ruleset")


def main() -> None:
    name = f"rprec{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        netns(name, "nft", "-f", "-", input=NFT_MIXED)
        (HERE / "nft_mixed.json").write_text(netns(name, "nft", "-j", "list", "ruleset"))
        netns(name, "nft", "flush", "ruleset")
        for rule in IPTABLES:
            netns(name, "sh", "-c", f"iptables {rule}")
        (HERE / "iptables_nft_custom.txt").write_text(netns(name, "iptables-save"))
        (HERE / "iptables_nft_custom.json").write_text(netns(name, "nft", "-j", "list", "ruleset"))
        netns(name, "nft", "flush", "ruleset")
        record_ipv6(name)
        with tempfile.TemporaryDirectory() as tmp:
            etc = Path(tmp) / "ufw"
            shutil.copytree("/etc/ufw", etc)
            script = "mount --make-rprivate / && mount --bind {etc} /etc/ufw && {cmds}".format(
                etc=etc, cmds=" && ".join(f"ufw {c} >/dev/null" for c in UFW)
            )
            netns(
                name,
                "unshare",
                "-m",
                "sh",
                "-c",
                script + f" && ufw status verbose > {tmp}/status && iptables-save > {tmp}/save"
                f" && nft -j list ruleset > {tmp}/nft",
            )
            shutil.copy(f"{tmp}/status", HERE / "ufw_status_verbose.txt")
            shutil.copy(f"{tmp}/save", HERE / "ufw_iptables_save.txt")
            shutil.copy(f"{tmp}/nft", HERE / "ufw_nft.json")
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


if __name__ == "__main__":
    main()
