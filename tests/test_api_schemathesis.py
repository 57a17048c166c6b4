"""Property-based tests of the live API against its own OpenAPI schema (schemathesis).

A real ``uvicorn api.app:app`` subprocess serves a temporary SQLite store with two
small real cohorts (see ``tests/test_api.py``). schemathesis loads
``/openapi.json`` from it and sends generated requests -- valid and invalid
parameters, unknown and well-formed ids -- to every documented operation, checking
that none answers 5xx and that every answer matches the schema (documented status
code, content type, response body).

``POST /api/cohorts`` is left out of the generated runs: valid bodies would launch
cohorts by the hundred; ``tests/test_api.py`` covers it (auth, validation, a run).
"""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.generation.modes import GenerationMode  # noqa: E402

from tests.test_api import BINANCE, TOKEN, ApiServer, seed_store  # noqa: E402

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

EXAMPLES = 40  # per operation and mode

@pytest.fixture(scope="module")
def live(tmp_path_factory):
    folder = tmp_path_factory.mktemp("schemathesis")
    url, runs = seed_store(folder)
    with ApiServer(folder, COHORTLAB_STORE=url, COHORTLAB_API_TOKEN=TOKEN) as srv:
        yield srv, runs


@pytest.fixture(scope="module")
def api_schema(live):
    srv, _ = live
    return schemathesis.openapi.from_url(srv.base + "/openapi.json").exclude(method="POST", path="/api/cohorts")


def _operations(api_schema) -> list:
    return [result.ok() for result in api_schema.get_all_operations()]


def _has_inputs(operation) -> bool:
    return any(len(group) for group in (operation.path_parameters, operation.query, operation.headers,
                                        operation.cookies, operation.body))


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_generated_requests_never_fail_the_server(live, api_schema, mode):
    """Every operation, with data that fits its schema (positive) and data that does
    not (negative, which must be refused with a 4xx)."""
    srv, runs = live
    operations = _operations(api_schema)
    assert len(operations) >= 8
    for operation in operations:
        if mode == "negative" and not _has_inputs(operation):
            continue  # nothing to get wrong

        @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            params = case.path_parameters or {}
            if mode == "positive" and "run_id" in params and len(params["run_id"]) % 2 == 0:
                params["run_id"] = runs[len(params["run_id"]) % 4 // 2]["run_id"]  # real ids, half the time
            case.call_and_validate(base_url=srv.base, timeout=30)

        try:
            check()
        except Exception as exc:
            raise AssertionError(f"{operation.method.upper()} {operation.path} ({mode}): {exc}") from exc


def test_the_schema_documents_every_api_route(live):
    srv, _ = live
    loaded = schemathesis.openapi.from_url(srv.base + "/openapi.json")
    paths = set(loaded.raw_schema["paths"])
    assert {"/api/experiments/cohorts", "/api/cohorts", "/api/cohorts/{run_id}", "/api/jobs/{job_id}",
            "/api/cohorts/{run_id}/agents/{agent_id}", "/api/cohorts/{run_id}/ledger",
            "/api/assistant/cohorts/status", "/api/assistant/cohorts/bankroll-summary", "/readyz"} <= paths
