"""Property-based tests of the live API against its own OpenAPI schema (schemathesis).

The package's API server (``tests/api/conftest.py``: a real ``uvicorn api.app:app``
subprocess on a temporary SQLite store with two small real cohorts) is loaded from
``/openapi.json``; schemathesis sends generated requests -- valid and invalid
parameters, unknown and well-formed ids -- to every documented operation, checking
that none answers 5xx and that every answer matches the schema (documented status
code, content type, response body).

``POST /api/cohorts`` is left out of the generated runs: valid bodies would launch
cohorts by the hundred; ``tests/api/test_launch.py`` covers it (auth, validation, a run).
``POST /api/risk/kill-switch`` too: a valid body would turn the switch on in the shared
store and flatten every later cohort; ``tests/api/test_risk.py`` covers it.

The promotion routes (``GET /api/assistant/cohorts/{cohort_id}/promotion-readiness``,
``GET /api/promotions``, ``GET /api/promotions/{promotion_id}``, ``POST /api/promotions``,
``.../approve``, ``.../reject``) are all generated: the reads change nothing, and the POSTs
need credentials schemathesis does not send (401, documented), so they cannot change the
shared store. Their success paths are ``tests/api/test_promotions.py`` and the role matrix
``tests/api/test_users_auth.py``.
"""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.generation.modes import GenerationMode  # noqa: E402

from tests.helpers import BINANCE  # noqa: E402

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

EXAMPLES = 40  # per operation and mode


@pytest.fixture(scope="module")
def api_schema(server):
    return (schemathesis.openapi.from_url(server.base + "/openapi.json")
            .exclude(method="POST", path="/api/cohorts")
            .exclude(method="POST", path="/api/risk/kill-switch"))


def _operations(api_schema) -> list:
    return [result.ok() for result in api_schema.get_all_operations()]


def _has_inputs(operation) -> bool:
    return any(len(group) for group in (operation.path_parameters, operation.query, operation.headers,
                                        operation.cookies, operation.body))


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_generated_requests_never_fail_the_server(server, runs, api_schema, mode):
    """Every operation, with data that fits its schema (positive) and data that does
    not (negative, which must be refused with a 4xx)."""
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
            case.call_and_validate(base_url=server.base, timeout=30)

        try:
            check()
        except Exception as exc:
            raise AssertionError(f"{operation.method.upper()} {operation.path} ({mode}): {exc}") from exc


def test_the_schema_documents_every_api_route(server):
    loaded = schemathesis.openapi.from_url(server.base + "/openapi.json")
    paths = set(loaded.raw_schema["paths"])
    assert {"/api/experiments/cohorts", "/api/cohorts", "/api/cohorts/{run_id}", "/api/jobs/{job_id}",
            "/api/cohorts/{run_id}/agents/{agent_id}", "/api/cohorts/{run_id}/ledger",
            "/api/assistant/cohorts/status", "/api/assistant/cohorts/bankroll-summary", "/readyz",
            "/api/assistant/cohorts/{cohort_id}/promotion-readiness", "/api/promotions",
            "/api/promotions/{promotion_id}", "/api/promotions/{promotion_id}/approve",
            "/api/promotions/{promotion_id}/reject", "/api/deployments", "/api/deployments/{deployment_id}",
            "/api/deployments/{deployment_id}/rollback", "/api/assistant/intents", "/api/assistant/intents/grow",
            "/api/assistant/intents/{intent_id}", "/api/assistant/intents/{intent_id}/confirm",
            "/api/assistant/intents/fund-tomorrow", "/api/reports/cohorts/{run_id}",
            "/api/reports/daily/{date}"} <= paths
