"""Input that used to slip through (issue 11): money overflow, OHLC consistency,
prices such as 1e308, folders whose files disagree on the timeframe, unknown
SYNTHETIC symbols, a duplicated CSV header, ``ledger verify`` on corrupt JSON and
the CLI bankroll. Each is refused with a clear error (CLI exit 2) and nothing is
stored."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from manager.cli import app
from manager.launch import execute_cohort
from manager.limits import BANKROLL_MAX, BANKROLL_MIN, MONEY_UNITS_MAX, check_money_range
from manager.runner import BarsRequest, CohortRequest, load_bars
from manager.store import open_store
from manager.times import RunError
from simulator.data import PRICE_MAX, load_market
from simulator.market import MarketDataError
from tests.helpers import BINANCE, market_from_prices

HEADER = "timestamp,open,high,low,close,volume\n"


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./data: the default market is SYNTHETIC
    monkeypatch.delenv("COHORTLAB_DATA_DIR", raising=False)


@pytest.fixture
def store_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def _cli(*args, store_url=None):
    argv = [str(a) for a in args] + (["--store", store_url] if store_url else [])
    return CliRunner().invoke(app, argv, catch_exceptions=False)


def _stored(url):
    with open_store(url) as st:
        return st.list_runs()


def _write(folder: Path, name: str, rows: list[str], header: str = HEADER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(header + "\n".join(rows) + "\n")
    return path


def _bars(n: int, step_min: int, price=lambda i: 100.0, start="2024-01-01T00:00:00Z") -> list[str]:
    t0 = pd.Timestamp(start)
    out = []
    for i in range(n):
        p = price(i)
        out.append(f"{(t0 + pd.Timedelta(minutes=step_min * i)).isoformat()},{p},{p},{p},{p},1")
    return out


# ------------------------------------------------------------------ money overflow
def test_price_jump_of_1e8_is_refused_before_anything_is_stored(tmp_path, store_url):
    folder = tmp_path / "jump"
    _write(folder, "BTC_USD.csv", _bars(400, 5, lambda i: 1.0 if i < 300 else 1e8))
    res = _cli("run", "--data", folder, "--start", "2024-01-01T12:00", "--end", "2024-01-02T09:00",
               "--agents", 3, "--baselines", 0, "--no-progress", store_url=store_url)
    assert res.exit_code == 2, res.output
    assert "overflow" in res.output and "BTC_USD" in res.output
    assert _stored(store_url) == []


def test_sizing_check_bound():
    ok = market_from_prices([[1.0], [1000.0]])
    check_money_range(ok, 100_000, 20)  # 1e5 x 20 x 1e3 x 1e8 = 2e17 units < 2**63 / 16
    bad = market_from_prices([[1.0], [1e8]])
    with pytest.raises(RunError, match=r"S0_USD range from 1 to 1e\+08 .*overflow"):
        check_money_range(bad, 1000, 2)  # the default bankroll and leverage ceiling
    assert MONEY_UNITS_MAX == 2**63 // 16


# ------------------------------------------------------------------ OHLC consistency and ceiling
@pytest.mark.parametrize("row,needle", [
    ("2024-01-01T00:10:00Z,100,101,99,102,1", r"close=102.0 > high=101.0"),
    ("2024-01-01T00:10:00Z,98,101,99,100,1", r"open=98.0 < low=99.0"),
    ("2024-01-01T00:10:00Z,102,101,99,100,1", r"open=102.0 > high=101.0"),
    ("2024-01-01T00:10:00Z,100,101,99,98,1", r"close=98.0 < low=99.0"),
    ("2024-01-01T00:10:00Z,1e308,1e308,1e308,1e308,1", r"above the ceiling 1e\+10"),
])
def test_inconsistent_or_huge_prices_are_refused_naming_file_and_row(tmp_path, row, needle):
    good = _bars(2, 5)
    _write(tmp_path / "d", "A_USD.csv", good + [row])
    with pytest.raises(MarketDataError, match=r"A_USD\.csv: data row 3 .*" + needle):
        load_market(tmp_path / "d")
    assert PRICE_MAX == 1e10


def test_cli_refuses_inconsistent_ohlc(tmp_path, store_url):
    _write(tmp_path / "d", "A_USD.csv", _bars(300, 5) + ["2024-01-02T01:00:00Z,100,101,99,102,1"])
    res = _cli("run", "--data", tmp_path / "d", "--no-progress", store_url=store_url)
    out = "".join(res.output.split())  # rich wraps long lines, anywhere (even inside a file name)
    assert res.exit_code == 2 and "A_USD.csv:datarow301" in out and "close=102.0>high=101.0" in out
    assert _stored(store_url) == []


# ------------------------------------------------------------------ timeframes
def test_a_minute_file_in_a_five_minute_folder_is_an_error(tmp_path):
    folder = tmp_path / "mixed"
    for sym in ("A_USD", "B_USD", "C_USD"):
        _write(folder, f"{sym}.csv", _bars(50, 5))
    _write(folder, "D_USD.csv", _bars(250, 1))
    with pytest.raises(MarketDataError, match=r"disagree on the timeframe: most files have 300 s bars, "
                                              r"but D_USD\.csv: 60 s"):
        load_market(folder)
    assert load_market(folder, ["A_USD", "B_USD"]).timeframe_s == 300  # the consistent ones load


def test_a_five_minute_file_in_a_minute_folder_is_an_error(tmp_path):
    folder = tmp_path / "mixed"
    for sym in ("A_USD", "B_USD"):
        _write(folder, f"{sym}.csv", _bars(250, 1))
    _write(folder, "C_USD.csv", _bars(50, 5))
    with pytest.raises(MarketDataError, match=r"most files have 60 s bars, but C_USD\.csv: 300 s"):
        load_market(folder)


# ------------------------------------------------------------------ SYNTHETIC symbols
def test_unknown_synthetic_symbols_are_an_error(store_url):
    with pytest.raises(RunError, match=r"unknown symbol\(s\) NOPE_BTC .*available: SYN_A_USD, SYN_B_USD, SYN_C_USD"):
        load_bars(BarsRequest(symbols=["NOPE_BTC"]))
    assert load_bars(BarsRequest(symbols=["SYN_B_USD"])).symbols == ("SYN_B_USD",)
    res = _cli("run", "--symbols", "NOPE_BTC", "--no-progress", store_url=store_url)
    assert res.exit_code == 2 and "NOPE_BTC" in res.output and "SYN_A_USD" in res.output
    assert _stored(store_url) == []


# ------------------------------------------------------------------ crashes
def test_duplicated_csv_header_is_a_clear_error(tmp_path):
    _write(tmp_path / "d", "A_USD.csv", [r + ",1" for r in _bars(3, 5)], header="timestamp,open,high,low,close,volume,close\n")
    with pytest.raises(MarketDataError, match=r"A_USD\.csv: duplicated column header\(s\) close"):
        load_market(tmp_path / "d")


def test_ledger_verify_on_corrupt_json_is_a_clear_error(tmp_path, store_url):
    if not BINANCE.is_dir():
        pytest.skip("no shared bars")
    res = _cli("run", "--data", BINANCE, "--start", "2018-01-15", "--agents", 2, "--baselines", 0,
               "--no-progress", store_url=store_url)
    assert res.exit_code == 0, res.output
    run_id = _stored(store_url)[0]["run_id"]
    db = sqlite3.connect(tmp_path / "runs.db")
    db.execute("UPDATE ledger SET doc = '{not json' WHERE run_id = ?", (run_id,))
    db.commit()
    db.close()
    res = _cli("ledger", "verify", run_id, store_url=store_url)
    assert res.exit_code == 2
    assert "corrupt" in res.output and run_id in res.output and "Traceback" not in res.output


# ------------------------------------------------------------------ bankroll
@pytest.mark.parametrize("bankroll", ["1e308", "49.99", "100000.01", "-5"])
def test_cli_bankroll_uses_the_api_bounds_and_stores_nothing(store_url, bankroll):
    res = _cli("run", "--bankroll", bankroll, "--no-progress", store_url=store_url)
    assert res.exit_code == 2 and "bankroll" in res.output
    assert _stored(store_url) == []


@pytest.mark.parametrize("bankroll", [1e308, 10.0, float("nan")])
def test_use_case_refuses_the_bankroll_too(store_url, bankroll):
    with open_store(store_url) as store:
        with pytest.raises(RunError, match=r"bankroll=.* out of range; allowed: 50 to 100,000"):
            execute_cohort(CohortRequest(bankroll=bankroll), store)
        assert store.list_runs() == []
    assert (BANKROLL_MIN, BANKROLL_MAX) == (50.0, 100_000.0)
