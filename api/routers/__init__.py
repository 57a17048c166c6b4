"""The API's routers, one per resource (mounted by :func:`api.app.create_app`).

=============================  ==========================================================
module                         routes
=============================  ==========================================================
:mod:`.experiments`            ``GET /api/experiments/cohorts`` (JSON or CSV)
:mod:`.cohorts`                ``GET /api/cohorts/{run_id}``, ``.../agents/{agent_id}``,
                               ``.../ledger``, ``POST /api/cohorts`` (role ops or admin)
:mod:`.jobs`                   ``GET /api/jobs/{job_id}``
:mod:`.assistant`              ``GET /api/assistant/cohorts/status``,
                               ``GET /api/assistant/cohorts/bankroll-summary``
:mod:`.risk`                   ``GET /api/risk/leverage``, ``GET /api/risk/decisions`` (JSON or CSV),
                               ``POST /api/risk/kill-switch`` (role risk or admin)
:mod:`.promotions`             ``GET /api/assistant/cohorts/{cohort_id}/promotion-readiness``,
                               ``GET /api/promotions`` (JSON or CSV), ``GET /api/promotions/{id}``,
                               ``POST /api/promotions`` (ops, admin), ``.../{id}/approve`` (the step's
                               role), ``.../{id}/reject`` (ops, risk, admin)
:mod:`.deployments`           ``GET /api/deployments``, ``GET /api/deployments/{id}``,
                               ``POST .../{id}/rollback`` (ops, risk, admin), ``.../{id}/extend``
                               (risk, admin), ``.../{id}/pause`` (ops, risk, admin)
:mod:`.reports`               ``GET /api/reports/cohorts/{run_id}``, ``GET /api/reports/daily/{date}``
                               (``format=csv|pdf``)
:mod:`.intents`                ``POST /api/assistant/intents/grow`` (ops, admin), ``POST .../{id}/confirm``
                               (ops, admin), ``GET .../fund-tomorrow``, ``GET .../{id}``,
                               ``POST /api/assistant/intents`` (text; ops, admin)
:mod:`.ops`                    ``GET /readyz``
=============================  ==========================================================
"""
from __future__ import annotations

from api.routers import assistant, cohorts, deployments, experiments, jobs, ops, promotions, reports, risk
from api.routers import intents

API_DESCRIPTION = """\
Money is in the quote currency of the bars (BTC for `*_BTC` pairs, USD for USD pairs and
equities); fractions are fractions (0.05 = 5 %); timestamps are ISO 8601 UTC.

**Auth.** Read-only routes are open. State-changing routes (`POST /api/cohorts`, `POST /api/risk/kill-switch`,
`POST /api/promotions...`, `POST /api/deployments/...`) need
`Authorization: Bearer <token>` -- a personal token (`cohortlab users add NAME --role ...`) or the bootstrap
admin's `COHORTLAB_API_TOKEN` -- or a signed-in dashboard session with its `X-CSRF-Token` header, and a role
allowed to act: `POST /api/cohorts` ops or admin, `POST /api/risk/kill-switch` risk or admin, `POST /api/promotions`
ops or admin, `POST /api/promotions/{id}/approve` the role of the step (ops, then risk; nobody signs two steps),
`POST /api/promotions/{id}/reject` ops, risk or admin, `POST /api/deployments/{id}/rollback` and `/pause`
ops, risk or admin, `POST /api/deployments/{id}/extend` risk or admin (403 otherwise).
401 without credentials; with neither a bootstrap token nor any user the message says to set
`COHORTLAB_API_TOKEN`.

**Jobs.** `POST /api/cohorts` answers 202 with a job id (= run id). With
`COHORTLAB_BROKER_URL` set the cohort runs on a Celery worker; without, in a thread pool
inside this API process (it dies with the process). Poll `GET /api/jobs/{id}`.

**Errors** are RFC 9457 problem documents (`application/problem+json`: `type`, `title`,
`status`, `detail`, `errors: [{"field", "message"}]`).
"""
"""OpenAPI description of the whole API (auth, jobs, errors, units)."""

ROUTERS = (experiments.router, cohorts.router, jobs.router, assistant.router, risk.router, promotions.router,
           deployments.router, reports.router, intents.router, ops.router)

__all__ = ["API_DESCRIPTION", "ROUTERS"]
