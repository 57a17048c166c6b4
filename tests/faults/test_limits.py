"""Resource limits (issue 11): a cohort's size is estimated before anything is
loaded and refused above the configured limits -- by the launch path, the CLI
(exit 2) and the API (422 before queueing). Every refusal here happens before
loading, so no test uses much memory."""
from __future__ import annotations

import math
import time
from datetime import date

import httpx
import pytest
from typer.testing import CliRunner

from manager.cli import app
from manager.launch import execute_cohort
from manager.limits import (LimitExceeded, SizeEstimate, check_cohort_size, estimate_memory_bytes,
                            estimate_size)
from manager.runner import BarsRequest, CohortRequest, load_bars
from manager.settings import Settings
from manager.store import open_store
from manager.times import RunError
from tests.api.server import TOKEN, ApiServer, assert_problem
from tests.helpers import BINANCE

HUGE = {"start": "2018-01-01", "end": "2099-01-01"}


@pytest.fixture(autouse=True)
def _no_data_folder(tmp_path, monkeypatch):
    """Run from an empty folder: no ./data, so the default market is SYNTHETIC."""
    monkeypatch.chdir(tmp_path)
    for name in ("COHORTLAB_MAX_BARS", "COHORTLAB_MAX_CELLS", "COHORTLAB_MAX_MEMORY_MB", "COHORTLAB_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_estimate_matches_a_hand_computation():
    # SYNTHETIC, 2 days of 5-minute bars + 200 warm-up, 3 symbols, 30 agents, 20 baselines
    est = estimate_size(BarsRequest(start="2024-01-01", end="2024-01-03", warmup_bars=200), agents=30, baselines=20)
    bars = 2 * 288 + 200
    assert (est.bars, est.symbols, est.agents, est.timeframe_s) == (bars, 3, 30, 300)
    assert est.cells == bars * 3 * 30
    assert est.simulated_agents == 30 * 21
    assert est.memory_bytes == 64 * bars * 3 + 10 * bars * 3 * 630 + 16 * bars * 630
    assert est.memory_bytes == estimate_memory_bytes(bars, 3, 630)


def test_folder_estimate_is_window_and_timeframe_capped_by_the_data():
    if not BINANCE.is_dir():
        pytest.skip("no shared bars")
    one_day = estimate_size(BarsRequest(data=str(BINANCE), start="2018-01-15", warmup_bars=200), agents=30)
    assert (one_day.timeframe_s, one_day.symbols) == (300, 10)
    assert one_day.bars == 288 + 200
    # a window of 81 years on a folder of a few weeks: never more bars than the data has
    loaded = load_bars(BarsRequest(data=str(BINANCE), whole=True))
    wide = estimate_size(BarsRequest(data=str(BINANCE), **HUGE), agents=30)
    assert loaded.close.shape[0] <= wide.bars <= loaded.close.shape[0] + 1


def test_defaults_fit_a_month_of_minute_bars_on_50_symbols_and_30_agents():
    s = Settings()
    bars = 31 * 1440 + 200
    sim = 30 * 21
    assert bars <= s.max_bars
    assert bars * 50 * 30 <= s.max_cells
    assert estimate_memory_bytes(bars, 50, sim) / 2**20 <= s.max_memory_mb <= 24 * 1024 * 0.75


@pytest.mark.parametrize("env,needle", [
    ({}, "COHORTLAB_MAX_BARS"),
    ({"COHORTLAB_MAX_BARS": "100000000"}, "COHORTLAB_MAX_CELLS"),
    ({"COHORTLAB_MAX_BARS": "100000000", "COHORTLAB_MAX_CELLS": "1000000000000"}, "COHORTLAB_MAX_MEMORY_MB"),
])
def test_each_limit_refuses_with_the_estimate_and_the_limit(monkeypatch, env, needle):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(LimitExceeded) as err:
        check_cohort_size(BarsRequest(**HUGE), agents=30, baselines=20)
    message = str(err.value)
    bars = (date(2099, 1, 1) - date(2018, 1, 1)).days * 288 + 200  # 5-minute bars + default warm-up
    assert needle in message and f"{bars:,} bars x 3 symbols x 30 agents" in message and "exceeds the limit" in message


def test_limits_are_configurable(monkeypatch):
    monkeypatch.setenv("COHORTLAB_MAX_BARS", "100")
    with pytest.raises(LimitExceeded, match=r"488 bars.*exceeds the limit 100 \(COHORTLAB_MAX_BARS\)"):
        load_bars(BarsRequest(start="2024-01-01"))


def test_launch_path_refuses_before_loading_and_stores_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    t0 = time.perf_counter()
    with open_store(url) as store:
        with pytest.raises(LimitExceeded, match="COHORTLAB_MAX_BARS"):
            execute_cohort(CohortRequest(bars=BarsRequest(**HUGE)), store)
        assert store.list_runs() == []
    assert time.perf_counter() - t0 < 10


def test_cli_exits_2_with_the_estimate(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    res = _cli("run", "--start", HUGE["start"], "--end", HUGE["end"], "--no-progress", "--store", url)
    assert res.exit_code == 2
    assert "cohort too large" in res.output and "COHORTLAB_MAX_BARS" in res.output
    with open_store(url) as st:
        assert st.list_runs() == []


@pytest.mark.parametrize("start,end", [("0001-01-01", "9999-12-31"), ("2262-05-01", None), ("1500-01-01", "1501-01-01")])
def test_windows_outside_pandas_range_are_clear_errors(start, end):
    with pytest.raises(RunError, match="outside the supported time range"):
        load_bars(BarsRequest(start=start, end=end))


def test_cli_window_outside_pandas_range_exits_2(tmp_path):
    res = _cli("run", "--start", "0001-01-01", "--end", "9999-12-31", "--no-progress",
               "--store", f"sqlite:///{tmp_path / 'runs.db'}")
    assert res.exit_code == 2 and "outside the supported time range" in res.output


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    folder = tmp_path_factory.mktemp("limits-api")
    with ApiServer(folder, COHORTLAB_STORE=f"sqlite:///{folder / 'runs.db'}", COHORTLAB_API_TOKEN=TOKEN) as srv:
        with httpx.Client(base_url=srv.base, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            yield c


@pytest.mark.parametrize("body,needle,field", [
    (HUGE, "COHORTLAB_MAX_BARS", "body"),
    ({"start": "0001-01-01", "end": "9999-12-31"}, "outside the supported time range", "start"),
    ({"symbols": ["NOPE_BTC"]}, "SYN_A_USD", "symbols"),
])
def test_api_answers_422_before_queueing(api, body, needle, field):
    t0 = time.perf_counter()
    r = api.post("/api/cohorts", json=body)
    doc = assert_problem(r, 422)
    assert needle in doc["detail"] and doc["errors"][0]["field"] == field
    assert time.perf_counter() - t0 < 5
    assert api.get("/api/jobs").json().get("items", []) == [] or all(
        j.get("state") != "queued" for j in api.get("/api/jobs").json().get("items", []))


def test_size_estimate_describe():
    est = SizeEstimate(bars=10, symbols=2, agents=3, simulated_agents=3, timeframe_s=60, cells=60,
                       memory_bytes=2**20)
    assert est.describe() == "10 bars x 2 symbols x 3 agents = 60 cells, about 1 MiB"
    assert math.isclose(est.memory_mb, 1.0)
