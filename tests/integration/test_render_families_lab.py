"""The terminal report of `reverseprobe forward` with a real IPv6 pinhole (miniupnpd 2.3.1,
WANIPv6FirewallControl, in the dual-stack lab of test_pinhole_lab.py): the IPv4 mapping and the
IPv6 pinhole, both UPNP_MAPPING_OK, read apart, and the PACS entry shows the IPv6 way in."""

from __future__ import annotations

import pytest
from test_pinhole_lab import _env, _listen

from lab import Lab, requires_lab, requires_tools
from lab.pinhole6 import pinhole_net
from portmap_lab import forward

pytestmark = [pytest.mark.lab, requires_lab, requires_tools("miniupnpd", "upnpc", "nft")]


def test_forward_text_tells_the_mapping_from_the_pinhole_and_shows_the_ipv6_entry() -> None:
    with Lab() as lab:
        net, ds = pinhole_net(lab)
        _listen(net.pc)
        r = forward(net.pc, "--aet", "MYSCU", env=_env(lab))
        assert r.returncode == 0, r.stdout + r.stderr
        out = r.stdout
        assert "\x1b[" not in out  # NO_COLOR, not a TTY: plain text
        assert out.count("UPNP_MAPPING_OK") == 2
        assert "[PASS] UPNP_MAPPING_OK (IPv4)  The router forwards" in out
        assert "[PASS] UPNP_MAPPING_OK (IPv6)  The router's IPv6 firewall" in out
        entry = " ".join(ln.strip() for ln in out.split("PACS entry", 1)[1].splitlines())
        assert f"or over IPv6: MYSCU @ [{ds.pc_ip6}]:11112" in entry
        assert f"given [{ds.pc_ip6}]:11112 it uses IPv6" in entry
        assert "tries IPv6 first" in entry
        assert all(len(ln) <= 80 for ln in out.splitlines())  # the entry's note wrapped too
