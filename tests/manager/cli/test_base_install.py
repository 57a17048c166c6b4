"""The CLI works from the base install: README command 1 needs no extra.

Each command runs in a subprocess whose ``PYTHONPATH`` holds a
``sitecustomize`` that puts a ``sys.meta_path`` finder in front of every other:
it refuses the modules of the optional extras (``service``: redis, celery,
kombu, fastapi, starlette, uvicorn, prometheus_client; ``download``: ccxt), as
if they were not installed. The main job and the learning loop must still work,
and the commands that do need an extra must name it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import BINANCE, ROOT

BLOCKED = ("redis", "celery", "kombu", "billiard", "fastapi", "starlette", "uvicorn", "prometheus_client", "ccxt")

SITECUSTOMIZE = textwrap.dedent(f"""
    import sys

    BLOCKED = {BLOCKED!r}

    class _ExtrasBlocker:
        '''Make the optional extras' modules unimportable, as in a base install.'''

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, _ExtrasBlocker())
""")


@pytest.fixture
def base_env(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLAB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    env["COHORTLAB_STORE"] = f"sqlite:///{tmp_path / 'base.db'}"
    return env


def cohortlab(env, *args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "manager.cli", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_blocker_really_blocks(base_env, tmp_path):
    code = ("import importlib\n"
            f"for m in {BLOCKED!r}:\n"
            "    try:\n        importlib.import_module(m)\n"
            "    except ModuleNotFoundError:\n        continue\n"
            "    raise SystemExit(f'{m} imported')\n")
    res = subprocess.run([sys.executable, "-c", code], env=base_env, cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr + res.stdout


def test_main_job_and_learning_loop_need_no_extra(base_env, tmp_path):
    """run (SYNTHETIC and real bars), backtest, runs list, ledger verify, evolve, campaign."""
    report = tmp_path / "report.json"
    res = cohortlab(base_env, "run", "--no-progress", "--json", report, cwd=tmp_path)
    assert res.returncode == 0, res.stderr + res.stdout
    rep = json.loads(report.read_text())
    assert rep["data"] == "SYNTHETIC" and rep["ledger"]["balanced"] is True
    run_id = rep["run_id"]

    res = cohortlab(base_env, "backtest", "--data", BINANCE, "--symbols", "ETH_BTC", "--strategy", "sma_cross",
                    "--start", "2018-01-15", "--end", "2018-01-16", "--json", tmp_path / "bt.json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr + res.stdout
    assert json.loads((tmp_path / "bt.json").read_text())["final_equity"] > 0

    res = cohortlab(base_env, "runs", "list", cwd=tmp_path)
    assert res.returncode == 0 and run_id in res.stdout, res.stderr + res.stdout
    res = cohortlab(base_env, "ledger", "verify", run_id, cwd=tmp_path)
    assert res.returncode == 0 and "verified" in res.stdout, res.stderr + res.stdout

    res = cohortlab(base_env, "evolve", "--data", BINANCE, "--train-start", "2018-01-13", "--train-end",
                    "2018-01-14", "--population", 8, "--generations", 2, "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr + res.stdout

    camp = tmp_path / "campaign.json"
    res = cohortlab(base_env, "campaign", "--data", BINANCE, "--start", "2018-01-15", "--days", 1,
                    "--agents", 6, "--generations", 2, "--lookback", "1d", "--no-progress", "--json", camp,
                    cwd=tmp_path)
    assert res.returncode == 0, res.stderr + res.stdout
    assert len(json.loads(camp.read_text())["days"]) == 1


def test_commands_needing_an_extra_name_it(base_env, tmp_path):
    res = cohortlab(base_env, "data", "download", "--exchange", "binance", "--symbols", "ETH/BTC",
                    "--out", tmp_path / "dl", cwd=tmp_path)
    assert res.returncode != 0
    assert "download" in res.stderr and "pip install" in res.stderr, res.stderr
    res = cohortlab(base_env, "serve", cwd=tmp_path)
    assert res.returncode != 0
    assert ".[service]" in res.stderr, res.stderr
