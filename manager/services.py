"""Process-wide services of a long-running process (the API and dashboard server):
the current settings and one shared store.

A server answers many requests; opening a database for each would cost more than
most requests. :func:`shared_store` keeps one store per process for the
configured ``COHORTLAB_STORE`` URL (opened on first use, re-opened when the URL
changes). Both adapters may be shared by threads (SQLite: one connection behind a
lock; MongoDB: one client pool).

The API's dependencies (``api.deps``) and the dashboard's pages (``web``) both
read the store through here; short-lived callers (the CLI, Celery tasks, jobs)
open their own with :func:`manager.store.open_store`.
"""
from __future__ import annotations

import os
import threading

import manager.store as store_module
from manager.settings import Settings, get_settings
from manager.store import Store, StoreError

__all__ = ["close_shared_store", "current_settings", "shared_store"]

_lock = threading.Lock()
_shared: tuple[str, Store] | None = None
_settings_cache: tuple[tuple, Settings] | None = None


def current_settings() -> Settings:
    """The settings for the environment as it is now.

    Parsing the settings costs about a millisecond, so the parsed object is reused
    while no ``COHORTLAB_*`` variable changed (a snapshot of them is compared on
    every call); a changed variable is picked up by the next call.

    Raises:
        StoreError: the settings do not validate (the API answers 503, like a store outage).
    """
    global _settings_cache
    key = tuple(sorted((k.upper(), v) for k, v in os.environ.items() if k.upper().startswith("COHORTLAB_")))
    cached = _settings_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        settings = get_settings()
    except ValueError as exc:  # pydantic ValidationError: a bad COHORTLAB_* variable
        raise StoreError(f"the COHORTLAB_* settings do not validate ({type(exc).__name__})") from exc
    _settings_cache = (key, settings)
    return settings


def shared_store(url: str | None = None) -> Store:
    """The process-wide store for ``url`` (default: the ``store`` setting, read now).

    The first call for a URL opens the store; later calls return the same object.
    When the URL differs from the open store's, the new one is opened and the old
    one closed (best effort).

    Raises:
        StoreError: the store cannot be opened, or the settings do not validate.
    """
    global _shared
    url = url or current_settings().store
    current = _shared
    if current is not None and current[0] == url:
        return current[1]
    with _lock:
        if _shared is not None and _shared[0] == url:
            return _shared[1]
        store = store_module.open_store(url)
        old, _shared = _shared, (url, store)
    if old is not None:
        try:
            old[1].close()
        except Exception:  # noqa: BLE001 - closing a replaced store is best effort
            pass
    return store


def close_shared_store() -> None:
    """Close the process-wide store (tests, shutdown); the next :func:`shared_store` reopens it."""
    global _shared
    with _lock:
        old, _shared = _shared, None
    if old is not None:
        old[1].close()
