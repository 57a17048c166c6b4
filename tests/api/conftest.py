"""Fixtures of the API tests: one real server on a seeded store for the whole package.

``seeded`` writes two small real cohorts on ``../shared/data/binance-5m`` into a
temporary SQLite store; ``server`` is a ``uvicorn api.app:app`` subprocess serving
it with ``COHORTLAB_API_TOKEN`` set and no broker (cohorts launched through the API
run in the server's thread pool); ``client`` talks to it with httpx like any client.
"""
from __future__ import annotations

import httpx
import pytest

from tests.api.campaign_store import Campaign, build
from tests.api.server import TOKEN, ApiServer, seed_store
from tests.helpers import BINANCE


@pytest.fixture(scope="package")
def seeded(tmp_path_factory):
    """``(folder, store url, runs)``: see :func:`tests.api.server.seed_store`."""
    if not BINANCE.is_dir():
        pytest.skip(f"bar data not found at {BINANCE}")
    folder = tmp_path_factory.mktemp("api")
    url, runs = seed_store(folder)
    return folder, url, runs


@pytest.fixture(scope="package")
def server(seeded):
    """The API server on the seeded store, with the bearer token and no broker."""
    folder, url, _ = seeded
    with ApiServer(folder, COHORTLAB_STORE=url, COHORTLAB_API_TOKEN=TOKEN) as srv:
        yield srv


@pytest.fixture(scope="package")
def runs(seeded):
    """The seeded cohorts: ``[{"run_id", "day", "bankroll", "report", "gross"}, ...]``."""
    return seeded[2]


@pytest.fixture()
def client(server):
    """An httpx client of :func:`server`."""
    with httpx.Client(base_url=server.base, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def campaign(tmp_path_factory) -> Campaign:
    """The shared 3-day promotion campaign in a template store (:mod:`tests.api.campaign_store`)."""
    if not BINANCE.is_dir():
        pytest.skip(f"bar data not found at {BINANCE}")
    return build(tmp_path_factory.mktemp("campaign"))
