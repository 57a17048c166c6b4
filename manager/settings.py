"""cohortlab configuration: one settings object read from the environment.

Every setting is an environment variable prefixed ``COHORTLAB_`` (case
insensitive), e.g. ``COHORTLAB_STORE=sqlite:////var/lib/cohortlab/runs.db``.
Defaults are the embedded ones: an SQLite file in the working directory, no
broker, no Redis.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["DEFAULT_STORE_URL", "Settings", "get_settings"]

DEFAULT_STORE_URL = "sqlite:///./cohortlab.db"
"""The embedded default store: ``cohortlab.db`` in the working directory."""


class Settings(BaseSettings):
    """cohortlab settings (environment variables ``COHORTLAB_<NAME>``).

    Attributes:
        store: store URL (``COHORTLAB_STORE``): ``sqlite:///relative/path.db``,
            ``sqlite:////absolute/path.db`` or ``sqlite:///:memory:``; see
            :func:`manager.store.open_store`. Default ``sqlite:///./cohortlab.db``.
        redis_url: Redis URL for the cache/result backend (``COHORTLAB_REDIS_URL``);
            None = in-process cache.
        broker_url: Celery broker URL (``COHORTLAB_BROKER_URL``); None = tasks run
            in-process.
        data_dir: folder of bar files (``COHORTLAB_DATA_DIR``); None = the
            caller's default.
        result_backend: Celery result backend (``COHORTLAB_RESULT_BACKEND``);
            None = the broker URL when it is a Redis URL.
        intraday_every_hours: beat interval of the intraday learning cycle,
            hours in [2, 4] (``COHORTLAB_INTRADAY_EVERY_HOURS``, default 3).
        intraday_lookback: lookback of the scheduled intraday cycle (``12h``).
        daily_scoring_minute: minutes after UTC midnight when the daily scoring
            of the day that just closed runs (default 10).
        metrics_port: port of a worker's Prometheus endpoint (default 9108);
            0 = do not serve.
        api_token: bearer token the HTTP API requires on state-changing routes
            (``COHORTLAB_API_TOKEN``; ``Authorization: Bearer <token>``). None =
            those routes are refused with 401 until it is set; read-only routes
            need no token. It is the **bootstrap admin** (``admin:bootstrap``); personal
            tokens of users come from ``cohortlab users add`` (:mod:`manager.users`).
        session_secret: key signing the dashboard's session cookie
            (``COHORTLAB_SESSION_SECRET``); None = a random key per process (a warning
            is logged: sessions end when the server restarts, and several workers do
            not share sessions).
        api_host: address ``cohortlab serve`` binds to (``COHORTLAB_API_HOST``,
            default ``127.0.0.1``: this machine only).
        api_port: port of ``cohortlab serve`` (``COHORTLAB_API_PORT``, default 8000).
        data_roots: folders under which the API may read bar data
            (``COHORTLAB_DATA_ROOTS``: a JSON list or ``os.pathsep``/comma separated
            paths). The API names a data folder by its name under a root; a folder
            must resolve, after symlinks, under one. Empty = ``data_dir`` (when set)
            and ``./data`` (:func:`manager.data_roots.data_roots`).
        allowed_hosts: ``Host`` header values the HTTP server answers
            (``COHORTLAB_ALLOWED_HOSTS``, JSON list or comma separated; ``*.example.com``
            wildcards allowed); others get 400 (DNS rebinding). Empty = ``localhost``,
            ``127.0.0.1``, ``::1`` and ``api_host``.
        max_bars: most bars (warm-up included) one cohort or backtest may load
            (``COHORTLAB_MAX_BARS``, default 150,000), >= 1.
        max_cells: most bars x symbols x agents of one cohort
            (``COHORTLAB_MAX_CELLS``, default 100,000,000), >= 1.
        max_memory_mb: most estimated peak memory of one cohort, MiB
            (``COHORTLAB_MAX_MEMORY_MB``, default 16,384), > 0. The estimate and
            its formula: :mod:`manager.limits`.
        run_lease_s: lease of a running run, seconds (``COHORTLAB_RUN_LEASE_S``,
            default 60), > 0: its executor renews it every third of that (a
            heartbeat); another worker or a restarted API takes a ``running``
            run over only once its lease expired (:mod:`manager.leases`).
        max_deliveries: most deliveries of one cohort/campaign-day task (per run id)
            that may start and never return -- a worker killed mid-task -- before the
            next delivery dead-letters the run (``COHORTLAB_MAX_DELIVERIES``, default 3),
            >= 1; see :mod:`manager.dead_letter`.
        alert_urls: the alert channels, by name (``COHORTLAB_ALERT_URLS``): apprise
            URLs as ``name=url`` pairs separated by commas, e.g.
            ``ops=slack://T/B/X,mail=mailtos://user:pass@example.com?to=ops@example.com``
            (a comma inside a URL is kept: a new pair starts only at ``,name=scheme://``),
            or a JSON object ``{"ops": "slack://..."}``. Empty = no channel (alerts
            are recorded as failed: nowhere to send). See :mod:`manager.alerts`.
        alert_window_s: the quiet window of an alert rule, seconds
            (``COHORTLAB_ALERT_WINDOW_S``, default 900 = 15 min), >= 0: a second
            alert of the same rule and subject within it is not sent (counted as
            ``suppressed`` on the first). 0 = every alert is sent.
        alert_windows: per-rule quiet windows overriding ``alert_window_s``
            (``COHORTLAB_ALERT_WINDOWS``: ``rule=seconds`` pairs, comma separated, or a
            JSON object), e.g. ``kill_switch=0,parent_drawdown=3600``.
        alert_drawdown: parent max drawdown above which a run alerts, a fraction
            (``COHORTLAB_ALERT_DRAWDOWN``, default 0.05 = 5 %), in (0, 1].
        alert_utilisation: parent peak utilisation (capital in positions / capital
            allocated) above which a run alerts, a fraction (``COHORTLAB_ALERT_UTILISATION``,
            default 0.9 = 90 %), > 0.
        alert_leverage_breaches: clipped or rejected orders of one agent (the parent
            gate's leverage/exposure breaches) from which a run alerts
            (``COHORTLAB_ALERT_LEVERAGE_BREACHES``, default 1), >= 1.
        alert_max_attempts: delivery attempts of one alert before it is recorded
            ``failed`` (``COHORTLAB_ALERT_MAX_ATTEMPTS``, default 5), >= 1.
        alert_backoff_s: the first retry delay, seconds; each retry doubles it, at
            most 300 s (``COHORTLAB_ALERT_BACKOFF_S``, default 2), >= 0.

    An empty environment variable counts as unset for the optional settings.

    Raises:
        pydantic.ValidationError: ``store`` is empty.
    """

    model_config = SettingsConfigDict(env_prefix="COHORTLAB_", extra="ignore")

    store: str = DEFAULT_STORE_URL
    redis_url: str | None = None
    broker_url: str | None = None
    data_dir: str | None = None
    result_backend: str | None = None
    intraday_every_hours: float = 3.0
    intraday_lookback: str = "12h"
    daily_scoring_minute: int = 10
    metrics_port: int = 9108
    api_token: str | None = None
    session_secret: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    data_roots: Annotated[list[str], NoDecode] = []
    allowed_hosts: Annotated[list[str], NoDecode] = []
    max_bars: int = Field(150_000, ge=1)
    max_cells: int = Field(100_000_000, ge=1)
    max_memory_mb: float = Field(16_384.0, gt=0)
    run_lease_s: float = Field(60.0, gt=0)
    max_deliveries: int = Field(3, ge=1)
    alert_urls: Annotated[dict[str, str], NoDecode] = {}
    alert_window_s: float = Field(900.0, ge=0)
    alert_windows: Annotated[dict[str, float], NoDecode] = {}
    alert_drawdown: float = Field(0.05, gt=0, le=1)
    alert_utilisation: float = Field(0.9, gt=0)
    alert_leverage_breaches: int = Field(1, ge=1)
    alert_max_attempts: int = Field(5, ge=1)
    alert_backoff_s: float = Field(2.0, ge=0)

    @field_validator("alert_urls", "alert_windows", mode="before")
    @classmethod
    def _named_pairs(cls, value: Any, info: ValidationInfo) -> Any:
        """A dict from a JSON object or ``name=value`` pairs separated by commas (for
        URLs a new pair starts only at ``,name=scheme://``, so a URL may hold commas)."""
        if not isinstance(value, str):
            return value
        import json
        import re

        text = value.strip()
        if not text:
            return {}
        if text.startswith("{"):
            return json.loads(text)
        split = r",\s*(?=[A-Za-z0-9_.-]+\s*=\s*[A-Za-z][A-Za-z0-9+.-]*://)" if info.field_name == "alert_urls" else ","
        out: dict[str, str] = {}
        for pair in re.split(split, text):
            if not pair.strip():
                continue
            name, sep, item = pair.partition("=")
            if not sep or not name.strip() or not item.strip():
                raise ValueError(f"COHORTLAB_{info.field_name.upper()}: {pair.strip()!r} is not name=value")
            out[name.strip()] = item.strip()
        return out

    @field_validator("data_roots", "allowed_hosts", mode="before")
    @classmethod
    def _path_list(cls, value: Any, info: ValidationInfo) -> Any:
        """A list from a JSON list or from comma separated text (data roots: also
        ``os.pathsep``; never for hosts, ``::1`` holds colons); blanks dropped."""
        if isinstance(value, str):
            import json
            import os

            text = value.strip()
            if text.startswith("["):
                value = json.loads(text)
            else:
                sep = os.pathsep if info.field_name == "data_roots" else ","
                value = [part for chunk in text.split(",") for part in chunk.split(sep)]
        if isinstance(value, (list, tuple)):
            return [str(v).strip() for v in value if str(v).strip()]
        return value

    @field_validator("intraday_every_hours")
    @classmethod
    def _every_2_to_4_hours(cls, value: float) -> float:
        if not 2.0 <= value <= 4.0:
            raise ValueError(f"COHORTLAB_INTRADAY_EVERY_HOURS={value} must be between 2 and 4 hours")
        return value

    @field_validator("store", mode="before")
    @classmethod
    def _store_not_empty(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise ValueError(
                    f"COHORTLAB_STORE is empty; allowed: a store URL such as {DEFAULT_STORE_URL!r}"
                )
        return value

    @field_validator("redis_url", "broker_url", "data_dir", "result_backend", "api_token", "session_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value


def get_settings() -> Settings:
    """Read the settings from the environment now (a fresh object on every call)."""
    return Settings()
