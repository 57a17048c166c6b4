"""Fixtures of the dashboard tests.

Pages are requested through FastAPI's ``TestClient`` from the real application
(:func:`api.app.create_app`) reading a temporary SQLite store that two small real
cohorts on ``../shared/data/binance-5m`` were written into (one day, a few agents
each, different days, bankrolls and allocation policies), plus a running and a
failed cohort."""
from __future__ import annotations

import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from manager import services  # noqa: E402
from manager.launch import execute_cohort  # noqa: E402
from manager.runner import BarsRequest, CohortRequest  # noqa: E402
from manager.store import open_store  # noqa: E402
from simulator.engine import EngineConfig  # noqa: E402
from tests.helpers import BINANCE  # noqa: E402


@pytest.fixture(scope="package")
def stored(tmp_path_factory):
    """``(store url, runs)``: a store with two completed cohorts, a running one and a failed one."""
    if not BINANCE.is_dir():
        pytest.skip(f"bar data not found at {BINANCE}")
    url = f"sqlite:///{tmp_path_factory.mktemp('web')}/web.db"
    runs = {}
    with open_store(url) as store:
        for name, day, bankroll, agents, allocation, gross in (
                ("a", "2018-01-15", 1000.0, 4, "equal", 1.0),
                ("b", "2018-01-16", 250.0, 3, "risk_weighted", 0.8)):
            req = CohortRequest(bars=BarsRequest(data=str(BINANCE), start=day), bankroll=bankroll, agents=agents,
                                seed=11, allocation=allocation, engine=EngineConfig(max_gross_leverage=gross))
            run_id, _, report = execute_cohort(req, store)
            runs[name] = {"run_id": run_id, "report": report, "day": day, "bankroll": bankroll,
                          "agents": agents, "gross": gross}
        # a run as the runner stores it when it starts: the typed header, no report yet
        header = {"day": "2018-01-17", "window_start": "2018-01-17T00:00:00Z", "window_end": "2018-01-18T00:00:00Z",
                  "bankroll": 500.0, "quote": "BTC", "agents": 3, "data_label": str(BINANCE),
                  "market": "binance-5m|5m|BTC", "seeded_from": "random"}
        doc = {"kind": "cohort", "header": header, "genomes": [], "data_label": str(BINANCE),
               "config": {"request": {"bankroll": 500.0, "allocation": "equal", "bars": {"start": "2018-01-17"}}}}
        runs["running"] = {"run_id": store.create_run(dict(doc))}
        failed = store.create_run(dict(doc))
        store.fail_run(failed, "MarketDataError: no bars in the window <2030-01-01>")
        runs["failed"] = {"run_id": failed}
    return url, runs


@pytest.fixture()
def client(stored, monkeypatch):
    """A TestClient of the whole app (API and dashboard) reading the :func:`stored` store."""
    url, _ = stored
    monkeypatch.setenv("COHORTLAB_STORE", url)
    services.close_shared_store()
    with TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1") as c:
        yield c
    services.close_shared_store()


@pytest.fixture()
def runs(stored):
    """The stored cohorts by name: ``a``, ``b`` (completed), ``running``, ``failed``."""
    return stored[1]


@pytest.fixture(scope="session")
def campaign(tmp_path_factory):
    """The shared 3-day promotion campaign in a template store (:mod:`tests.api.campaign_store`)."""
    from tests.api.campaign_store import build

    if not BINANCE.is_dir():
        pytest.skip(f"bar data not found at {BINANCE}")
    return build(tmp_path_factory.mktemp("campaign-web"))
