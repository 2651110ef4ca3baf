"""`forward` without a network: option validation, the pure findings, the keeper's renew/stop
logic, the nonce store, and the UPnP steps against a fake IGD for what miniupnpd cannot be made
to answer (725 OnlyPermanentLeasesSupported, 728 NoPortMapsAvailable). The real router is in
test_forward_lab.py."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from typing import Any

import pytest

from reverseprobe.cli import main
from reverseprobe.commands import forward_keep as keeper
from reverseprobe.config import ForwardConfig
from reverseprobe.diagnosis import forward as advice
from reverseprobe.environment import Environment
from reverseprobe.model import PacsEntry, Report, Severity, Status
from reverseprobe.portmap import upnp_ops
from reverseprobe.portmap.igd import Igd, PortMapping
from reverseprobe.portmap.outcome import Action, MappingResult, Request, RouterResult, Via
from reverseprobe.portmap.state import NonceStore, key, state_dir

LAN, GW, PUB = "192.168.2.2", "192.168.2.1", "100.128.0.2"


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdout=out, stderr=err, environ=environ or {}, stdout_isatty=False, stderr_isatty=False
    )
    return main(list(argv), env), out.getvalue(), err.getvalue()


# --- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["forward", "--keep", "--list"], "--keep"),
        (["forward", "--keep", "--remove"], "--keep"),
        (["forward", "--keep", "--dry-run"], "--keep"),
        (["forward", "--description", "x" * 65], "longer than 64"),
        (["forward", "--description", "tab\there"], "printable"),
        (["forward", "--description", "  "], "empty"),
        (["forward", "--port", "0"], "'0'"),
        (["forward", "--external-port", "65536"], "'65536'"),
        (["forward", "--lease", "-1"], "'-1'"),
        (["forward", "--list", "--remove"], "not allowed"),
        (["forward", "--upnp", "--natpmp"], "not allowed"),
        (["forward", "--from", "203.0.113.0/24"], "one source address"),
        (["forward", "--from", "2001:db8::1"], "IPv4 only"),
        (["forward", "--from", "pacs.example"], "'pacs.example'"),
        (["forward", "--natpmp", "--from", "203.0.113.7"], "cannot restrict the source"),
        (["forward", "--list", "--from", "203.0.113.7"], "only goes with adding"),
    ],
)
def test_bad_options_exit_2_with_one_line(argv, needle):
    code, out, err = run(*argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err


def test_config_defaults_and_environment():
    from reverseprobe.cli import build_parser
    from reverseprobe.commands.forward import make_request
    from reverseprobe.config.forward import forward_config

    env = Environment(environ={"REVERSEPROBE_REFLECTOR": "http://r.example:8470"})
    cfg = forward_config(build_parser().parse_args(["forward", "--aet", "MYSCU"]), env.environ)
    assert (cfg.mode, cfg.action, cfg.lease, cfg.reflector) == (
        "upnp",
        "add",
        3600,
        "http://r.example:8470",
    )
    req = make_request(cfg)
    assert req.external_port == 11112 and req.description == "reverseprobe MYSCU DICOM port 11112"
    kept = forward_config(build_parser().parse_args(["forward", "--keep"]), {})
    assert kept.lease == 600  # --keep holds a lease, never a permanent mapping
    permanent = forward_config(build_parser().parse_args(["forward", "--lease", "0"]), {})
    assert permanent.lease == 0
    one = forward_config(build_parser().parse_args(["forward", "--from", "203.0.113.7/32"]), {})
    assert one.remote_host == "203.0.113.7" and make_request(one).remote_host == "203.0.113.7"
    assert cfg.remote_host is None and make_request(cfg).remote_host == ""


def test_the_announcement_says_what_where_from_where_and_how_long():
    def said(req, **kw):
        args: dict[str, Any] = dict(via="UPnP IGD", gateway=GW, lan=LAN, keep=False, action="add")
        args |= kw
        return advice.announcement(req, **args)["text"]

    text = said(REQ)
    for part in (f"router at {GW}", "TCP port 11112", "from any address", f"{LAN}:11112",
                 "for 3600 s", "--keep", "--lease 0"):  # fmt: skip
        assert part in text, part
    assert "only from 203.0.113.7" in said(replace(REQ, remote_host="203.0.113.7"))
    assert "permanently" in said(replace(REQ, lease=0))
    assert "until Ctrl-C" in said(replace(REQ, lease=600), keep=True)
    assert said(replace(REQ, dry_run=True)).startswith("dry run, nothing changes: would ask")
    assert "remove the mapping of TCP port 11112" in said(REQ, action="remove")
    doc = advice.announcement(REQ, via="UPnP IGD", gateway=None, lan=None, keep=False,
                              action="add")  # fmt: skip
    assert doc["router"] is None and "the default gateway" in doc["text"]
    assert (doc["lease_s"], doc["remote_host"]) == (3600, None)


# --- pure findings -------------------------------------------------------------------------

CTX = advice.Context(aet="MYSCU", port=11112, external_port=11112, gateway=GW, lan=LAN)
ROUTER = RouterResult(
    status=Status.OK,
    via=Via.UPNP,
    gateway=GW,
    lan_address=LAN,
    connection_status="Connected",
    external_ip=PUB,
    external_ip_class="public",
)
BASE = MappingResult(
    status=Status.OK,
    action=Action.ADDED,
    via=Via.UPNP,
    external_port=11112,
    internal_port=11112,
    internal_client=LAN,
    lease_granted=0,
    verified=True,
    assigned_external_port=11112,
)


def codes(fs):
    return {f.code: f.severity for f in fs}


def test_success_gives_pass_and_the_pacs_entry():
    fs = advice.findings(CTX, ROUTER, BASE, listing=False)
    assert codes(fs) == {"UPNP_MAPPING_OK": Severity.PASS}
    assert "permanent" in fs[0].summary
    entry = advice.pacs_entry(CTX, ROUTER, BASE)
    assert entry is not None and (entry.aet, entry.host, entry.port) == ("MYSCU", PUB, 11112)
    assert "DNS name" in entry.note and f"{LAN}:11112" in entry.note


def test_a_leased_mapping_says_when_it_ends():
    m = replace(BASE, lease_granted=86400, via=Via.PCP, verified=None)
    f = advice.findings(CTX, replace(ROUTER, via=Via.PCP), m, listing=False)[0]
    assert "86400 s" in f.summary and "--keep" in f.summary and "cannot read" in f.fix


def test_another_external_port_is_a_warning_and_goes_into_the_entry():
    m = replace(BASE, assigned_external_port=1024, via=Via.NATPMP)
    fs = advice.findings(CTX, ROUTER, m, listing=False)
    assert codes(fs) == {"UPNP_MAPPING_OK": Severity.PASS, "FORWARD_PORT_CHANGED": Severity.WARN}
    entry = advice.pacs_entry(CTX, ROUTER, m)
    assert entry is not None and entry.port == 1024


@pytest.mark.parametrize(
    ("router", "why"),
    [
        (replace(ROUTER, external_ip="100.64.0.2", external_ip_class="shared"), "carrier-grade"),
        (replace(ROUTER, external_ip="10.0.0.2", external_ip_class="private"), "not a public"),
        (replace(ROUTER, external_ip=None, external_ip_class=None), "no external address"),
    ],
)
def test_double_nat_fails_with_steps_for_the_outer_router(router, why):
    fs = advice.findings(CTX, router, BASE, listing=False)
    nat = next(f for f in fs if f.code == "NAT_DOUBLE")
    assert nat.severity is Severity.FAIL and why in nat.summary and "outer router" in nat.fix
    entry = advice.pacs_entry(CTX, router, BASE)
    assert entry is not None and entry.host is None


def test_no_router_fails_with_the_manual_steps():
    router = RouterResult(status=Status.FAIL, gateway=GW, tried=("upnp: no IGD answered",))
    m = MappingResult(
        status=Status.SKIPPED, action=Action.NOT_TRIED, external_port=11112, internal_port=11112
    )
    (f,) = advice.findings(CTX, router, m, listing=False)
    assert f.code == "UPNP_UNAVAILABLE" and f.severity is Severity.FAIL
    assert "http://192.168.2.1/" in f.fix and "internal address 192.168.2.2" in f.fix
    assert "AE title MYSCU" in f.fix and advice.pacs_entry(CTX, router, m) is None


@pytest.mark.parametrize(
    ("action", "extra", "code", "sev"),
    [
        (Action.HELD_BY_OTHER, {"held_by": "192.168.2.3:11112"}, "UPNP_MAPPING_OTHER_HOST", "fail"),
        (Action.REMOVED, {}, "UPNP_MAPPING_MISSING", "info"),
        (Action.ABSENT, {}, "UPNP_MAPPING_MISSING", "info"),
        (Action.WOULD_ADD, {}, "UPNP_MAPPING_MISSING", "info"),
        (Action.WOULD_REMOVE, {}, "UPNP_MAPPING_MISSING", "info"),
        (Action.UNCHANGED, {}, "UPNP_MAPPING_OK", "pass"),
        (
            Action.REFUSED,
            {"status": Status.FAIL, "error_code": 728, "error_name": "NoPortMapsAvailable"},
            "UPNP_MAPPING_MISSING",
            "fail",
        ),
    ],
)
def test_each_action_has_its_finding(action, extra, code, sev):
    m = replace(BASE, action=action, **extra)
    fs = advice.findings(CTX, ROUTER, m, listing=False)
    assert codes(fs) == {code: Severity(sev)}
    if action is Action.HELD_BY_OTHER:
        assert "192.168.2.3:11112" in fs[0].summary and "--external-port" in fs[0].fix


def test_listing_renders_every_mapping():
    rows = (
        PortMapping(11112, "TCP", LAN, 11112, "rp", True, 0),
        PortMapping(5000, "UDP", "192.168.2.3", 5000, "game", False, 300),
    )
    m = replace(BASE, action=Action.LISTED, before=rows[0])
    fs = advice.findings(CTX, replace(ROUTER, mappings=rows), m, listing=True)
    listing = next(f for f in fs if f.code == "ROUTER_MAPPINGS")
    assert (
        "2 port mapping(s)" in listing.summary and "UDP 5000 -> 192.168.2.3:5000" in listing.summary
    )


# --- UPnP steps against a fake IGD (725 and 728 cannot be produced by miniupnpd) ----------


class FakeIgdUpnp:
    def __init__(self, errors=(), table=None):
        self.errors = list(errors)
        self.table: dict[int, tuple[Any, ...]] = dict(table or {})
        self.adds: list[tuple[Any, ...]] = []

    def addportmapping(self, eport, proto, iaddr, iport, desc, rhost, lease):
        self.adds.append((eport, iaddr, iport, lease))
        if self.errors:
            raise Exception(self.errors.pop(0))
        self.table[eport] = (iaddr, iport, desc, True, lease)
        return True

    def getspecificportmapping(self, eport, proto):
        return self.table.get(eport)

    def deleteportmapping(self, eport, proto, rhost=""):
        if eport not in self.table:
            raise Exception("NoSuchEntryInArray")
        del self.table[eport]
        return True


def fake_igd(fake) -> Igd:
    return Igd(fake, location="http://192.168.2.1:1/d.xml", control_url="/c", lan_address=LAN)


REQ = Request(port=11112, external_port=11112, lease=3600, description="rp")


def test_725_is_retried_as_permanent():
    fake = FakeIgdUpnp(errors=["OnlyPermanentLeasesSupported"])
    m = upnp_ops.add(fake_igd(fake), REQ)
    assert m.action is Action.ADDED and m.status is Status.OK and m.lease_granted == 0
    assert [a[3] for a in fake.adds] == [3600, 0] and "permanent" in (m.note or "")


def test_728_table_full_is_refused_with_a_fix():
    m = upnp_ops.add(fake_igd(FakeIgdUpnp(errors=["NoPortMapsAvailable"])), REQ)
    assert m.action is Action.REFUSED and m.error_code == 728 and "--list" in (m.error_fix or "")
    (f,) = advice.findings(CTX, ROUTER, m, listing=False)
    assert f.severity is Severity.FAIL and "728 NoPortMapsAvailable" in f.summary
    assert "Manual steps" in f.fix


def test_force_replaces_where_the_router_lets_it():
    fake = FakeIgdUpnp(table={11112: ("192.168.2.3", 11112, "other", True, 0)})
    held = upnp_ops.add(fake_igd(fake), REQ)
    assert held.action is Action.HELD_BY_OTHER and fake.adds == []
    m = upnp_ops.add(fake_igd(fake), replace(REQ, force=True))
    assert m.action is Action.REPLACED and m.verified and fake.table[11112][0] == LAN


def test_a_mapping_the_router_silently_drops_is_not_reported_as_done():
    class Forgetful(FakeIgdUpnp):
        def getspecificportmapping(self, eport, proto):
            return None

    m = upnp_ops.add(fake_igd(Forgetful()), REQ)
    assert m.status is Status.FAIL and m.verified is False
    (f,) = advice.findings(CTX, ROUTER, m, listing=False)
    assert f.code == "UPNP_MAPPING_MISSING" and f.severity is Severity.FAIL


# --- the keeper ----------------------------------------------------------------------------


def _report(action: Action) -> Report:
    m = replace(BASE, action=action, lease_granted=10)
    return Report(
        command="forward",
        probes={"router": ROUTER, "mapping": m},
        findings=[],
        pacs_entry=PacsEntry("MYSCU", PUB, 11112),
        elapsed_s=0.1,
    )


class Passes:
    """Records one_pass calls; answers renewals with `renew`, removals with REMOVED."""

    def __init__(self, renew: MappingResult):
        self.calls: list[str] = []
        self.renew = renew

    def __call__(self, cfg, req, gateway, deadline, store, *, action=None):
        self.calls.append(action)
        if action == "remove":
            return ROUTER, replace(BASE, action=Action.REMOVED)
        return ROUTER, self.renew


def _sleeps(n: int):
    seen: list[float] = []

    def sleep(s: float) -> None:
        seen.append(s)
        if len(seen) > n:
            raise KeyboardInterrupt

    return sleep, seen


@pytest.mark.parametrize(
    ("first", "removed"), [(Action.ADDED, True), (Action.RENEWED, False), (Action.UNCHANGED, False)]
)
def test_keep_renews_at_half_the_lease_and_ctrl_c_removes_only_its_own(first, removed):
    passes = Passes(replace(BASE, action=Action.RENEWED, lease_granted=8))
    sleep, seen = _sleeps(2)
    err = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        keeper.keep(
            ForwardConfig(keep=True, lease=10),
            REQ,
            GW,
            _report(first),
            env=Environment(stderr=err, environ={}),
            store=None,
            one_pass=passes,
            sleep=sleep,
        )
    assert seen[:3] == [5.0, 4.0, 4.0]
    assert passes.calls == ["add", "add"] + (["remove"] if removed else [])
    assert ("removed the mapping" in err.getvalue()) == removed


def test_keep_stops_with_a_report_when_another_host_takes_the_port():
    passes = Passes(
        replace(BASE, status=Status.FAIL, action=Action.HELD_BY_OTHER, held_by="192.168.2.3:11112")
    )
    sleep, _ = _sleeps(5)
    report = keeper.keep(
        ForwardConfig(keep=True, lease=10),
        REQ,
        GW,
        _report(Action.ADDED),
        env=Environment(stderr=io.StringIO(), environ={}),
        store=None,
        one_pass=passes,
        sleep=sleep,
    )
    assert {f.code for f in report.findings} == {"UPNP_MAPPING_OTHER_HOST"}
    assert report.pacs_entry is None and json.dumps(report.to_dict())


def test_renew_interval():
    assert keeper.renew_interval(120, 600) == 60
    assert keeper.renew_interval(None, 600) == 300
    assert keeper.renew_interval(0, 0) == keeper.PERMANENT_CHECK_S
    assert keeper.renew_interval(1, 1) == keeper.MIN_INTERVAL_S


# --- the nonce store -----------------------------------------------------------------------


def test_nonce_store_roundtrip_and_damage(tmp_path):
    s = NonceStore(tmp_path / "a")
    k = key(GW, LAN, "tcp", 11112)
    assert s.get(k) is None
    assert s.put(k, b"\x01" * 12)
    assert NonceStore(tmp_path / "a").get(k) == b"\x01" * 12  # a later run reads it
    assert (tmp_path / "a" / "pcp-nonces.json").stat().st_mode & 0o077 == 0
    s.drop(k)
    assert NonceStore(tmp_path / "a").get(k) is None
    (tmp_path / "a" / "pcp-nonces.json").write_text('{"x": "not hex", "y": 3, ')
    assert NonceStore(tmp_path / "a").get("x") is None  # damaged: ignored, never raised


def test_nonce_store_survives_an_unwritable_place(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    s = NonceStore(blocker / "sub")  # a directory below a file cannot exist
    assert s.put("k", b"\x02" * 12) is False
    assert s.get("k") == b"\x02" * 12  # kept in memory for this run


def test_state_dir_order():
    assert str(state_dir({"REVERSEPROBE_STATE_DIR": "/x"})) == "/x"
    assert str(state_dir({"XDG_STATE_HOME": "/s", "HOME": "/h"})) == "/s/reverseprobe"
    assert str(state_dir({"HOME": "/h"})) == "/h/.local/state/reverseprobe"


def test_an_existing_longer_mapping_is_never_shortened():
    fake = FakeIgdUpnp(table={11112: (LAN, 11112, "rp", True, 604000)})
    m = upnp_ops.add(fake_igd(fake), REQ)  # asks 3600 s
    assert m.action is Action.UNCHANGED and fake.adds == []
    fake.table[11112] = (LAN, 11112, "rp", True, 100)
    m = upnp_ops.add(fake_igd(fake), REQ)
    assert m.action is Action.RENEWED and fake.adds[-1][3] == 3600


class FakeIgdWithSource(FakeIgdUpnp):
    """A router that keeps NewRemoteHost (honours=True) or drops it (miniupnpd without
    UPNP_STRICT maps for any source and says nothing)."""

    def __init__(self, honours: bool, **kw):
        super().__init__(**kw)
        self.honours = honours
        self.sources: dict[int, str] = {}
        self.deleted: list[int] = []

    def addportmapping(self, eport, proto, iaddr, iport, desc, rhost, lease):
        super().addportmapping(eport, proto, iaddr, iport, desc, rhost, lease)
        self.sources[eport] = rhost if self.honours else ""
        return True

    def deleteportmapping(self, eport, proto, rhost=""):
        self.deleted.append(eport)
        return super().deleteportmapping(eport, proto, rhost)

    def getgenericportmapping(self, i):
        rows = sorted(self.table.items())
        if i >= len(rows):
            return None
        eport, (iaddr, iport, desc, enabled, lease) = rows[i]
        return (eport, "TCP", (iaddr, iport), desc, enabled, self.sources.get(eport, ""), lease)


def test_from_is_read_back_and_a_router_that_ignores_it_is_undone():
    req = replace(REQ, remote_host="203.0.113.7")
    good = FakeIgdWithSource(honours=True)
    m = upnp_ops.add(fake_igd(good), req)
    assert m.status is Status.OK and m.remote_host == "203.0.113.7" and good.deleted == []

    bad = FakeIgdWithSource(honours=False)
    m = upnp_ops.add(fake_igd(bad), req)
    assert m.status is Status.FAIL and m.remote_host == "" and bad.deleted == [11112]
    assert 11112 not in bad.table and "admits any source" in (m.reason or "")
    (f,) = advice.findings(CTX, ROUTER, m, listing=False)
    assert f.code == "UPNP_MAPPING_MISSING" and f.severity is Severity.FAIL
    assert "203.0.113.7" in f.summary


def test_from_replaces_our_own_mapping_that_admits_any_source():
    fake = FakeIgdWithSource(honours=True, table={11112: (LAN, 11112, "rp", True, 0)})
    m = upnp_ops.add(fake_igd(fake), replace(REQ, remote_host="203.0.113.7"))
    assert m.status is Status.OK and m.action is Action.RENEWED
    assert fake.deleted == [11112] and fake.sources[11112] == "203.0.113.7"
