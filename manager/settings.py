"""cohortlab configuration: one settings object read from the environment.

Every setting is an environment variable prefixed ``COHORTLAB_`` (case
insensitive), e.g. ``COHORTLAB_STORE=sqlite:////var/lib/cohortlab/runs.db``.
Defaults are the embedded ones: an SQLite file in the working directory, no
broker, no Redis.
"""

from __future__ import annotations

from typing import Any

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
            need no token.
        api_host: address ``cohortlab serve`` binds to (``COHORTLAB_API_HOST``,
            default ``127.0.0.1``: this machine only).
        api_port: port of ``cohortlab serve`` (``COHORTLAB_API_PORT``, default 8000).

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
    api_host: str = "127.0.0.1"
    api_port: int = 8000

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

    @field_validator("redis_url", "broker_url", "data_dir", "result_backend", "api_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value


def get_settings() -> Settings:
    """Read the settings from the environment now (a fresh object on every call)."""
    return Settings()
