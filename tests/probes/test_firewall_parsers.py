"""Firewall readers on recorded samples (tests/samples/firewall/) and on garbage.

The Linux samples were recorded by tests/samples/firewall/record.py from real nft, iptables-nft
and ufw in a network namespace. The Windows (netsh), macOS (socketfilterfw) and firewalld
samples follow those tools' documented output formats.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import TESTS
from reverseprobe.diagnosis.firewall_fix import allow_command
from reverseprobe.probes.fwparse import firewalld, iptables, macos, netsh, nft, ufw
from reverseprobe.probes.fwparse.model import Inbound, ParseError, Reading, Verdict, worst

SAMPLES = TESTS / "samples" / "firewall"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


V = Verdict


# --- nftables -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "verdict", "rule_part"),
    [
        (22, V.ALLOWED, "tcp dport 22 accept"),
        (11112, V.ALLOWED, "@allowed"),  # the named set
        (8050, V.ALLOWED, "8000-8100"),  # a range inside an anonymous set
        (104, V.BLOCKED, "vmap"),  # verdict map: 104 : drop
        (4243, V.ALLOWED, "vmap"),
        (5000, V.BLOCKED, "reject"),  # th dport
        (6000, V.ALLOWED, "tcp dport 6000 accept"),  # in a jumped-to chain
        (9999, V.BLOCKED, "!= 11112 drop"),
        (4242, V.CONDITIONAL, "!= 11112 drop"),  # accepted from 10/8 only, else dropped
    ],
)
def test_nft_mixed_ruleset(port: int, verdict: Verdict, rule_part: str) -> None:
    r = nft.evaluate(sample("nft_mixed.json"), Inbound(port, "eth0"))
    assert r.source == "nftables"
    assert r.verdict is verdict, r
    assert r.rule is not None and rule_part in r.rule
    assert r.where == "inet filter input" or "sub" in (r.where or "")


def _ruleset(chain_body: str, policy: str = "accept") -> str:
    """A one-chain nft JSON ruleset built like `nft -j list ruleset` prints it."""
    rules = json.loads(chain_body) if chain_body else []
    items = [
        {"metainfo": {"json_schema_version": 1}},
        {"table": {"family": "inet", "name": "t", "handle": 1}},
        {
            "chain": {
                "family": "inet",
                "table": "t",
                "name": "in",
                "handle": 1,
                "type": "filter",
                "hook": "input",
                "prio": 0,
                "policy": policy,
            }
        },
    ]
    for i, expr in enumerate(rules, 2):
        items.append(
            {"rule": {"family": "inet", "table": "t", "chain": "in", "handle": i, "expr": expr}}
        )
    return json.dumps({"nftables": items})


DPORT = {"payload": {"protocol": "tcp", "field": "dport"}}
SADDR = {"payload": {"protocol": "ip", "field": "saddr"}}


def m(left: object, right: object, op: str = "==") -> dict[str, object]:
    return {"match": {"op": op, "left": left, "right": right}}


def test_nft_policy_drop_is_default_drop() -> None:
    text = _ruleset(json.dumps([[m(DPORT, 22), {"accept": None}]]), policy="drop")
    r = nft.evaluate(text, Inbound(11112))
    assert r.verdict is V.DEFAULT_DROP and r.rule is None


def test_nft_accept_only_from_a_source_is_conditional() -> None:
    rule = [m(SADDR, {"prefix": {"addr": "10.0.0.0", "len": 8}}), m(DPORT, 11112), {"accept": None}]
    r = nft.evaluate(_ruleset(json.dumps([rule]), policy="drop"), Inbound(11112))
    assert r.verdict is V.CONDITIONAL
    assert "10.0.0.0/8" in r.note


def test_nft_drop_for_one_source_does_not_block_the_port() -> None:
    rule = [m(SADDR, "203.0.113.7"), {"drop": None}]
    r = nft.evaluate(_ruleset(json.dumps([rule])), Inbound(11112))
    assert r.verdict is V.OPEN
    assert "203.0.113.7" in r.note


def test_nft_interface_is_known_or_unknown() -> None:
    iif = {"meta": {"key": "iifname"}}
    rule = [m(iif, "eth0"), m(DPORT, 11112), {"accept": None}]
    text = _ruleset(json.dumps([rule]), policy="drop")
    assert nft.evaluate(text, Inbound(11112, "eth0")).verdict is V.ALLOWED
    assert nft.evaluate(text, Inbound(11112, "wlan0")).verdict is V.DEFAULT_DROP
    assert nft.evaluate(text, Inbound(11112, None)).verdict is V.CONDITIONAL


def test_nft_loopback_and_established_rules_never_match_a_new_inbound_connection() -> None:
    rules = [
        [m({"meta": {"key": "iifname"}}, "lo"), {"accept": None}],
        [m({"ct": {"key": "state"}}, ["established", "related"], "in"), {"accept": None}],
        [m({"ct": {"key": "state"}}, "new", "in"), {"reject": {"type": "tcp reset"}}],
    ]
    r = nft.evaluate(_ruleset(json.dumps(rules)), Inbound(11112, None))
    assert r.verdict is V.BLOCKED and "ct state new" in (r.rule or "")


JUMP_A = {"jump": {"target": "a"}}


def test_nft_jump_loop_and_unknown_expressions_are_not_guessed() -> None:
    loop = {
        "nftables": [
            {"table": {"family": "ip", "name": "t"}},
            {"chain": {"family": "ip", "table": "t", "name": "in", "type": "filter",
                       "hook": "input", "prio": 0, "policy": "drop"}},
            {"chain": {"family": "ip", "table": "t", "name": "a"}},
            {"rule": {"family": "ip", "table": "t", "chain": "in", "expr": [JUMP_A]}},
            {"rule": {"family": "ip", "table": "t", "chain": "a", "expr": [JUMP_A]}},
        ]
    }  # fmt: skip
    assert nft.evaluate(json.dumps(loop), Inbound(11112)).verdict is V.UNKNOWN
    fib = [[{"match": {"op": "==", "left": {"fib": {"flags": ["saddr"]}}, "right": False}},
            {"accept": None}]]  # fmt: skip
    assert nft.evaluate(_ruleset(json.dumps(fib), "drop"), Inbound(1)).verdict is V.CONDITIONAL


def test_nft_ignores_ip6_and_nat_chains_and_ordered_base_chains_all_must_accept() -> None:
    items = json.loads(_ruleset(json.dumps([[m(DPORT, 11112), {"accept": None}]]), "drop"))
    items["nftables"] += [
        {"table": {"family": "inet", "name": "late"}},
        {"chain": {"family": "inet", "table": "late", "name": "in", "type": "filter",
                   "hook": "input", "prio": 10, "policy": "drop"}},
    ]  # fmt: skip
    r = nft.evaluate(json.dumps(items), Inbound(11112))
    assert r.verdict is V.DEFAULT_DROP and r.where == "inet late in"


def test_nft_iptables_nft_tables_can_be_left_to_iptables_save() -> None:
    text = sample("iptables_nft_custom.json")
    alone = nft.evaluate(text, Inbound(104, "eth0"))
    assert alone.verdict is V.CONDITIONAL  # the xt conntrack match hides what it does
    skipped = nft.evaluate(text, Inbound(104, "eth0"), skip_tables=[("ip", "filter")])
    assert skipped.verdict is V.OPEN and not skipped.active


# --- iptables -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "verdict"),
    [
        (22, V.ALLOWED),
        (8050, V.ALLOWED),
        (104, V.BLOCKED),
        (9999, V.BLOCKED),
        (4242, V.CONDITIONAL),  # from 10/8 only
    ],
)
def test_iptables_custom(port: int, verdict: Verdict) -> None:
    r = iptables.evaluate(sample("iptables_nft_custom.txt"), Inbound(port, "eth0"))
    assert r.verdict is verdict, r


def test_iptables_policy_decides_after_an_unknown_match() -> None:
    # 11112 passes the "! --dport 11112" drop; the recent match may drop, the policy drops
    r = iptables.evaluate(sample("iptables_nft_custom.txt"), Inbound(11112, "eth0"))
    assert r.verdict is V.DEFAULT_DROP and r.rule is None
    assert iptables.parse_save(sample("iptables_nft_custom.txt")).backend == "nf_tables"


@pytest.mark.parametrize(
    ("port", "iface", "verdict", "rule_part"),
    [
        (22, "eth0", V.ALLOWED, "--dport 22 -j ACCEPT"),
        (11112, "eth0", V.BLOCKED, "--dport 11112 -j DROP"),
        (104, "eth0", V.BLOCKED, "REJECT"),
        (4242, "eth0", V.CONDITIONAL, None),
        (6003, "eth0", V.ALLOWED, "6000:6007"),
        (8080, "eth0", V.ALLOWED, "-i eth0"),
        (8080, None, V.CONDITIONAL, None),
        (9999, "eth0", V.DEFAULT_DROP, None),
    ],
)
def test_iptables_on_real_ufw_rules(
    port: int, iface: str | None, verdict: Verdict, rule_part: str | None
) -> None:
    r = iptables.evaluate(sample("ufw_iptables_save.txt"), Inbound(port, iface))
    assert r.verdict is verdict, r
    if rule_part:
        assert rule_part in (r.rule or "")


def test_iptables_legacy_header_and_counters() -> None:
    text = (
        "# Generated by iptables-save v1.8.7 (legacy) on Mon\n*filter\n:INPUT ACCEPT [5:300]\n"
        "[3:180] -A INPUT -p tcp -m tcp --dport 11112 -j DROP\nCOMMIT\n"
    )
    assert iptables.parse_save(text).backend == "legacy"
    assert iptables.evaluate(text, Inbound(11112)).verdict is V.BLOCKED
    assert iptables.evaluate(text, Inbound(11113)).verdict is V.OPEN


# --- ufw ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "iface", "verdict"),
    [
        (22, "eth0", V.ALLOWED),
        (11112, "eth0", V.BLOCKED),
        (104, "eth0", V.BLOCKED),
        (4242, "eth0", V.CONDITIONAL),
        (6003, "eth0", V.ALLOWED),
        (2222, "eth0", V.CONDITIONAL),  # LIMIT
        (8080, "eth0", V.ALLOWED),
        (8080, "wlan0", V.DEFAULT_DROP),
        (9999, "eth0", V.DEFAULT_DROP),
    ],
)
def test_ufw_status(port: int, iface: str, verdict: Verdict) -> None:
    r = ufw.evaluate(sample("ufw_status_verbose.txt"), Inbound(port, iface))
    assert r.verdict is verdict, r


def test_ufw_inactive_and_app_profiles() -> None:
    assert ufw.evaluate("Status: inactive\n", Inbound(1)).verdict is V.OPEN
    text = (
        "Status: active\nDefault: deny (incoming), allow (outgoing), disabled (routed)\n\n"
        "To                         Action      From\n--                         ------      ----\n"
        "OpenSSH                    ALLOW IN    Anywhere\n"
    )
    r = ufw.evaluate(text, Inbound(22))
    assert r.verdict is V.CONDITIONAL and "OpenSSH" in r.note


# --- firewalld ------------------------------------------------------------------------------

SERVICES = {
    "ssh": firewalld.parse_service_xml(sample("firewalld_service_ssh.xml")),
    "http": firewalld.parse_service_xml(sample("firewalld_service_http.xml")),
}


@pytest.mark.parametrize(
    ("port", "iface", "verdict", "rule"),
    [
        (11112, "eth0", V.ALLOWED, "port 11112/tcp"),
        (8050, "eth0", V.ALLOWED, "port 8000-8100/tcp"),
        (22, "eth0", V.ALLOWED, "service ssh"),
        (80, "eth0", V.ALLOWED, "service http"),
        (104, "eth0", V.BLOCKED, 'rule port port="104" protocol="tcp" reject'),
        (4243, "eth0", V.CONDITIONAL, None),  # rich rule with a source
        (9999, "eth0", V.CONDITIONAL, None),  # dhcpv6-client/mdns services: ports unknown
        (9999, "wg0", V.OPEN, None),  # trusted zone
        (2222, "eth0", V.CONDITIONAL, None),
    ],
)
def test_firewalld_zones(port: int, iface: str, verdict: Verdict, rule: str | None) -> None:
    r = firewalld.evaluate(sample("firewalld_list_all_zones.txt"), Inbound(port, iface), SERVICES)
    assert r.verdict is verdict, r
    if rule:
        assert r.rule == rule
    assert r.where == ("zone trusted" if iface == "wg0" else "zone public")


def test_firewalld_default_target_refuses_what_nothing_allows() -> None:
    services = {**SERVICES, "dhcpv6-client": [("546", "udp")]}
    r = firewalld.evaluate(sample("firewalld_list_all_zones.txt"), Inbound(9999, "eth0"), services)
    assert r.verdict is V.DEFAULT_DROP
    # the internal zone (bound to 10.20.0.0/16) allows 4242 for its sources only
    r = firewalld.evaluate(sample("firewalld_list_all_zones.txt"), Inbound(4242, "eth0"), services)
    assert r.verdict is V.CONDITIONAL and "10.20.0.0/16" in r.note


STORESCP = r"C:\dcmtk\storescp.exe"

# --- Windows --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "program", "verdict", "rule"),
    [
        (104, None, V.BLOCKED, "Block legacy DICOM"),
        (8050, None, V.ALLOWED, "Web ports"),
        (11112, None, V.CONDITIONAL, None),  # allowed for Horos only
        (11112, r"C:\Program Files\Horos\horos.exe", V.ALLOWED, "Horos DICOM listener"),
        (11112, STORESCP, V.DEFAULT_DROP, None),
        (4242, None, V.CONDITIONAL, None),  # only "Any-port app" (a program) may allow it
        (4242, r"C:\dcmtk\storescp.exe", V.DEFAULT_DROP, None),  # Public-profile rule only
        (4243, STORESCP, V.CONDITIONAL, None),  # remote address restriction
        (3389, STORESCP, V.DEFAULT_DROP, None),  # the rule is disabled
        (135, STORESCP, V.DEFAULT_DROP, None),  # RPC-EPMap is not a port number
    ],
)
def test_netsh_private_profile(
    port: int, program: str | None, verdict: Verdict, rule: str | None
) -> None:
    r = netsh.evaluate(
        sample("netsh_currentprofile_private.txt"),
        sample("netsh_rules_in_verbose.txt"),
        Inbound(port, None, program),
    )
    assert r.verdict is verdict, r
    assert r.rule == rule
    assert r.where == "Private profile"


def test_netsh_off_and_block_all() -> None:
    rules = sample("netsh_rules_in_verbose.txt")
    off = netsh.evaluate(sample("netsh_currentprofile_off.txt"), rules, Inbound(104))
    assert off.verdict is V.OPEN and not off.active
    blk = netsh.evaluate(sample("netsh_currentprofile_blockall.txt"), rules, Inbound(8050))
    assert blk.verdict is V.BLOCKED and "BlockInboundAlways" in (blk.rule or "")


def test_netsh_other_language_is_unreadable() -> None:
    german = "Profileinstellungen für Privat:\n---\nStatus                                EIN\n"
    with pytest.raises(ParseError):
        netsh.evaluate(german, None, Inbound(11112))


# --- macOS ----------------------------------------------------------------------------------


def test_macos_per_application() -> None:
    text = sample("macos_alf_enabled.txt")
    horos = "/Applications/Horos.app/Contents/MacOS/Horos"
    assert macos.evaluate(text, Inbound(11112, None, horos)).verdict is V.ALLOWED
    blocked = macos.evaluate(text, Inbound(11112, None, "/usr/local/bin/storescp"))
    assert blocked.verdict is V.BLOCKED
    other = macos.evaluate(text, Inbound(11112, None, "/opt/bin/dcmrecv"))
    assert other.verdict is V.DEFAULT_DROP and "signed" in other.note
    # which program is allowed, and that it is not the listener's
    assert "none of them the listener" in other.note and "/Applications/Horos.app" in other.note
    assert macos.evaluate(text, Inbound(11112)).verdict is V.DEFAULT_DROP


def test_macos_block_all_and_off() -> None:
    r = macos.evaluate(sample("macos_alf_blockall.txt"), Inbound(11112, None, "/x"))
    assert r.verdict is V.BLOCKED
    off = macos.evaluate(sample("macos_alf_disabled_old.txt"), Inbound(11112))
    assert off.verdict is V.OPEN and not off.active


# --- combining, fixes, garbage --------------------------------------------------------------


def test_worst_reading_decides() -> None:
    assert worst([V.OPEN, V.ALLOWED, V.DEFAULT_DROP]) is V.DEFAULT_DROP
    assert worst([V.ALLOWED, V.UNKNOWN]) is V.UNKNOWN
    assert worst([V.CONDITIONAL, V.BLOCKED]) is V.BLOCKED
    assert worst([]) is None


@pytest.mark.parametrize(
    ("reading", "managers", "expected"),
    [
        (Reading("nftables", True, V.BLOCKED, "x", "inet filter input"), (),
         "sudo nft insert rule inet filter input tcp dport 11112 accept"),
        (Reading("iptables", True, V.BLOCKED, "x", "filter MYCHAIN"), (),
         "sudo iptables -I INPUT -p tcp --dport 11112 -j ACCEPT"),
        (Reading("ufw", True, V.BLOCKED, "11112/tcp DENY IN Anywhere"), ("ufw",),
         "sudo ufw delete deny 11112/tcp && sudo ufw allow 11112/tcp"),
        (Reading("ufw", True, V.BLOCKED, "Anywhere on eth0 DENY IN Anywhere"), ("ufw",),
         "sudo ufw delete NUMBER`), then sudo ufw allow 11112/tcp"),
        (Reading("ufw", True, V.DEFAULT_DROP), ("ufw",), "sudo ufw allow 11112/tcp"),
        (Reading("nftables", True, V.DEFAULT_DROP, None, "inet firewalld filter_INPUT"),
         ("firewalld",), "sudo firewall-cmd --permanent --add-port=11112/tcp"),
        (Reading("windows", True, V.DEFAULT_DROP, None, "Private profile"), (),
         'netsh advfirewall firewall add rule name="DICOM receiver 11112" dir=in action=allow '
         "protocol=TCP localport=11112"),
        (Reading("windows", True, V.BLOCKED, "Block legacy DICOM"), (),
         'netsh advfirewall firewall set rule name="Block legacy DICOM" new enable=no'),
        (Reading("macos", True, V.BLOCKED, "Block all incoming connections"), (),
         "socketfilterfw --setblockall off"),
    ],
)  # fmt: skip
def test_allow_commands(reading: Reading, managers: tuple[str, ...], expected: str) -> None:
    assert expected in allow_command(11112, reading, managers)


PARSERS = [
    lambda t: nft.evaluate(t, Inbound(11112)),
    lambda t: iptables.evaluate(t, Inbound(11112)),
    lambda t: ufw.evaluate(t, Inbound(11112)),
    lambda t: firewalld.evaluate(t, Inbound(11112)),
    lambda t: netsh.evaluate(t, t, Inbound(11112)),
    lambda t: macos.evaluate(t, Inbound(11112)),
]


@pytest.mark.parametrize("parse", PARSERS)
@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=400))
def test_parsers_on_garbage_raise_only_parse_error(parse: object, text: str) -> None:
    assert callable(parse)
    try:
        r = parse(text)
    except ParseError:
        return
    assert isinstance(r, Reading)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=12),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(junk=_json, where=st.integers(0, 40))
def test_nft_on_mangled_real_json(junk: object, where: int) -> None:
    """Real nft output with one piece swapped for random JSON: a Reading or a ParseError."""
    doc = json.loads(sample("nft_mixed.json"))
    items = doc["nftables"]
    target = items[where % len(items)]
    kind = next(iter(target))
    body = target[kind]
    if isinstance(body, dict) and body:
        key = sorted(body)[where % len(body)]
        body[key] = junk
    try:
        r = nft.evaluate(json.dumps(doc), Inbound(11112, "eth0"))
    except ParseError:
        return
    assert isinstance(r, Reading)


def test_truncated_and_huge_inputs() -> None:
    full = sample("nft_mixed.json")
    with pytest.raises(ParseError):
        nft.evaluate(full[: len(full) // 2], Inbound(1))
    with pytest.raises(ParseError):
        iptables.parse_save("-A INPUT -j DROP\n")  # a rule outside a table
    with pytest.raises(ParseError):
        nft.load(" " * (nft.MAX_JSON + 1))
    r = iptables.evaluate(
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport\nCOMMIT\n", Inbound(1)
    )
    assert r.verdict is V.UNKNOWN


def test_netsh_names_the_program_another_rule_allows() -> None:
    """Windows Firewall allows programs: a rule for the port that names another program than
    the listener does not let the listener's connections in, and the note says whose it is."""
    r = netsh.evaluate(
        sample("netsh_currentprofile_private.txt"),
        sample("netsh_rules_in_verbose.txt"),
        Inbound(11112, None, STORESCP),
    )
    assert r.verdict is V.DEFAULT_DROP
    assert "another program than the listener" in r.note and "horos.exe" in r.note.lower()
