"""Every command's plan: the sequential budgets fit the deadline less its margin, for short and
long timeouts alike (tailscale's TestMakeProbePlan / TestReportTimeouts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reverseprobe import config as c
from reverseprobe.commands import check, checklist, forward, move_test
from reverseprobe.runner import Plan

TIMEOUTS = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 30.0, 120.0, 600.0)


def _fits(plan: Plan, time_left: float) -> None:
    assert all(s.budget_s >= 0 for s in plan.steps), plan
    assert plan.total_s() <= max(0.0, time_left - plan.margin_s) + 1e-9, plan
    for name, part in plan.parts.items():
        assert part.sequential
        assert part.total_s() <= plan.budget(name) + 1e-9, (name, part)


@pytest.mark.parametrize("timeout", TIMEOUTS)
def test_check_plan_fits(timeout: float) -> None:
    plan = check.plan(c.CheckConfig(timeout=timeout), timeout)
    assert plan.names == check.PROBE_NAMES and not plan.sequential
    _fits(plan, timeout)


@pytest.mark.parametrize("timeout", TIMEOUTS)
def test_router_gives_the_mapping_call_its_share_first(timeout: float) -> None:
    """GetSpecificPortMappingEntry runs right after the description and is never given less
    than GetStatusInfo or GetExternalIPAddress (the old order spent the time on those)."""
    calls = check.plan(c.CheckConfig(timeout=timeout), timeout).parts["router"]
    names = calls.names
    assert names.index("GetSpecificPortMappingEntry") == names.index("description") + 1
    mapping = calls.budget("GetSpecificPortMappingEntry")
    assert mapping > 0
    assert mapping >= calls.budget("GetStatusInfo")
    assert mapping >= calls.budget("GetExternalIPAddress")


def test_router_default_timeout_keeps_nominal_mapping_budget() -> None:
    """At check's default 8 s the nominal worst case (2 s SSDP + four 2 s calls) does not fit;
    the mapping call keeps its full 2 s and the others share what is left."""
    calls = check.plan(c.CheckConfig(), c.DEFAULT_CHECK_TIMEOUT).parts["router"]
    assert calls.budget("ssdp") == 2.0 and calls.budget("GetSpecificPortMappingEntry") == 2.0
    assert calls.budget("GetStatusInfo") < 2.0


@pytest.mark.parametrize("timeout", TIMEOUTS)
@pytest.mark.parametrize("mode", list(c.ForwardMode.__members__.values()))
def test_forward_plan_fits(timeout: float, mode: c.ForwardMode) -> None:
    plan = forward.plan(c.ForwardConfig(mode=mode, timeout=timeout), timeout)
    assert plan.sequential
    _fits(plan, timeout)
    if mode is c.ForwardMode.AUTO:  # PCP/NAT-PMP keep at least half the time
        assert plan.budget("discover") <= (timeout - plan.margin_s) / 2 + 1e-9


def _move_cfg(timeout: float, **kw: Any) -> c.MoveTestConfig:
    return c.MoveTestConfig(
        pacs_host="127.0.0.1", pacs_port=104, pacs_aet="PACS", aet="ME", timeout=timeout, **kw
    )


@pytest.mark.parametrize("timeout", TIMEOUTS)
@pytest.mark.parametrize("try_cget", [False, True])
@pytest.mark.parametrize("grace", [0.5, 5.0, 30.0])
def test_move_test_plan_fits(timeout: float, try_cget: bool, grace: float) -> None:
    plan = move_test.plan(_move_cfg(timeout, try_cget=try_cget, grace=grace), timeout)
    assert plan.names == move_test.PROBE_NAMES and plan.sequential
    _fits(plan, timeout)
    assert plan.parts["move"].budget("grace") <= grace
    if timeout >= 10:  # the C-MOVE gets the largest share
        assert plan.budget("move") == max(s.budget_s for s in plan.steps)


def _site(tmp_path: Path, n_pacs: int) -> c.ChecklistConfig:
    from reverseprobe.sitefile import load_site

    pacs = "".join(
        f'\n[[pacs]]\nname = "p{i}"\nhost = "127.0.0.1"\nport = 104\naet = "PACS{i}"\n'
        for i in range(n_pacs)
    )
    f = tmp_path / "site.toml"
    f.write_text(f'[site]\nname = "S"\naet = "ME"\nport = 11112\n{pacs}', encoding="utf-8")
    return c.ChecklistConfig(site_file=f, site=load_site(f))


@pytest.mark.parametrize("timeout", TIMEOUTS)
@pytest.mark.parametrize("n_pacs", [0, 1, 3])
def test_checklist_plan_fits(tmp_path: Path, timeout: float, n_pacs: int) -> None:
    cfg = _site(tmp_path, n_pacs)
    plan = checklist.plan(cfg, timeout)
    assert plan.names == ("check", *(f"p{i}" for i in range(n_pacs)))
    _fits(plan, timeout)


def test_check_plan_gives_the_nat_layer_probes_their_needs() -> None:
    """Issue 13: at check's default timeout the path probe gets its lookup and hop budget and
    the virtual probe its nft read; without a target the path probe needs nothing."""
    from reverseprobe.probes import path, virtual

    cfg = c.CheckConfig(reflector="http://192.0.2.1:8080/r")
    needs = check.needs_s(cfg)
    assert needs["path"] >= path.RESOLVE_S + path.BUDGET_S
    assert needs["virtual"] >= virtual.NFT_BUDGET_S
    plan = check.plan(cfg, c.DEFAULT_CHECK_TIMEOUT)
    for name in ("path", "virtual"):
        assert plan.budget(name) >= needs[name], name
    assert "path" not in check.needs_s(c.CheckConfig(public_ip=False))


@pytest.mark.parametrize("timeout", TIMEOUTS)
def test_short_timeout_path_probe_is_cut_short_not_passed(timeout: float) -> None:
    """A path probe given less than it needs that found no hop is reported cut short (a
    timeout with the reason), never taken as measured."""
    from reverseprobe.model import Status
    from reverseprobe.model.virtual import PathResult

    cfg = c.CheckConfig(reflector="http://192.0.2.1:8080/r", timeout=timeout)
    plan = check.plan(cfg, timeout)
    r = PathResult(status=Status.TIMEOUT, reason="no hop answered (ICMP filtered)")
    cuts = check.cut_short(cfg, plan, {"path": r})
    assert ("path" in cuts) is (plan.budget("path") < check.needs_s(cfg)["path"])
