"""Service commands: ``migrate`` (the store's schema migrations) and ``serve`` (the HTTP API
and dashboard; needs the ``service`` extra, uvicorn, loaded only when the command runs)."""
from __future__ import annotations

import os
from typing import Optional

import typer
from rich.markup import escape

from manager.cli.options import STORE
from manager.cli.output import fail, note, say
from manager.settings import get_settings
from manager.store import StoreError
from migrations import format_status, migrate_url


def migrate(
    store_url: Optional[str] = STORE,
    status: bool = typer.Option(False, "--status", help="Only show which migrations are applied; change nothing."),
) -> None:
    """Apply the store's pending schema migrations (indexes, collections/tables); idempotent."""
    try:
        applied, rows = migrate_url(store_url, status_only=status)
    except StoreError as exc:
        fail(exc)
    for line in format_status(rows):
        say(escape(line), highlight=False)
    if not status:
        say(f"applied: {', '.join(applied)}" if applied else "nothing to apply; the store is up to date")


def serve(
    host: Optional[str] = typer.Option(None, "--host", help="Address to bind (default $COHORTLAB_API_HOST or "
                                       "127.0.0.1: this machine only; 0.0.0.0 for every interface)."),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535,
                                       help="Port (default $COHORTLAB_API_PORT or 8000)."),
    workers: int = typer.Option(1, "--workers", min=1, help="uvicorn worker processes (set "
                                "PROMETHEUS_MULTIPROC_DIR with more than one; without a broker each runs its own "
                                "cohort jobs)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: debug, info, warning, error."),
) -> None:
    """Serve the HTTP API and dashboard with uvicorn (OpenAPI docs at /docs).

    POST /api/cohorts needs COHORTLAB_API_TOKEN; without COHORTLAB_BROKER_URL cohorts run in a thread pool
    inside this process."""
    try:
        import uvicorn  # the service extra: optional, so loaded only here
        settings = get_settings()
    except ImportError as exc:
        fail(RuntimeError(f"{exc.name} is not installed; install the service extra: pip install -e '.[service]'"))
    except Exception as exc:  # pydantic ValidationError of a bad COHORTLAB_* variable
        fail(exc)
    bind_host, bind_port = host or settings.api_host, port or settings.api_port
    note(f"cohortlab API on http://{bind_host}:{bind_port} (docs /docs); "
         f"jobs {'on Celery' if settings.broker_url else 'in process'}; "
         f"POST routes {'need the bearer token' if settings.api_token else 'disabled (set COHORTLAB_API_TOKEN)'}",
         highlight=False, markup=False)
    # the app answers its bind host in Host headers (api.middleware.allowed_hosts); workers inherit it
    os.environ["COHORTLAB_API_HOST"] = bind_host
    uvicorn.run("api.app:app", host=bind_host, port=bind_port, workers=workers, log_level=log_level)
