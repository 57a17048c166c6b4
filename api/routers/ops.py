"""``GET /readyz``: ready to serve (store reachable; broker reachable when configured)."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.schemas import Readiness
from manager import services

router = APIRouter(tags=["operations"])


def _check_store() -> dict:
    try:
        services.shared_store().list_runs(limit=1)
    except Exception as exc:  # noqa: BLE001 - report, never raise
        from manager.store import StoreError

        from manager.data_roots import public_path  # no token needed: no server path

        return {"ok": False, "error": public_path(str(exc)) if isinstance(exc, StoreError) else type(exc).__name__}
    return {"ok": True, "error": None}


def _check_broker(url: str) -> dict:
    try:
        from manager.celery_app import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": f"{type(exc).__name__}: broker unreachable"}
    return {"ok": True, "error": None}


@router.get("/readyz", response_model=Readiness, summary="Readiness: store (and broker) reachable",
            responses={503: {"model": Readiness, "description": "A dependency is unreachable"}})
def readyz():
    """200 `{"status": "ready"}` when the store answers a one-run query and, when
    `COHORTLAB_BROKER_URL` is set, the broker accepts a connection; else 503 with the
    failing check. Load balancers should route only to ready instances."""
    from manager.settings import get_settings

    try:
        settings = get_settings()
    except Exception as exc:  # noqa: BLE001 - invalid settings: not ready
        return JSONResponse({"status": "unavailable", "checks": {"settings": {"ok": False,
                                                                              "error": type(exc).__name__}}}, 503)
    checks = {"store": _check_store()}
    if settings.broker_url:
        checks["broker"] = _check_broker(settings.broker_url)
    ok = all(c["ok"] for c in checks.values())
    return JSONResponse({"status": "ready" if ok else "unavailable", "checks": checks}, 200 if ok else 503)
