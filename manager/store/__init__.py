"""Persistence for cohortlab: the storage port and its adapters.

Use :func:`open_store` to get a :class:`Store` for a URL (default: the
``COHORTLAB_STORE`` setting, itself defaulting to ``sqlite:///./cohortlab.db``).
"""

from __future__ import annotations

import re
from pathlib import Path

from manager.store.base import (
    InvalidDocument,
    NotFound,
    RunNotFound,
    RunStateError,
    Store,
    StoreError,
    StudyMismatch,
    new_run_id,
)
from manager.store.sqlite import SQLiteStore

__all__ = [
    "InvalidDocument",
    "NotFound",
    "RunNotFound",
    "RunStateError",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StudyMismatch",
    "new_run_id",
    "open_store",
]

_ALLOWED = "sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite:///:memory:"
_EMBEDDED_DEFAULT = "sqlite:///./cohortlab.db"
_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def _redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe for error messages)."""
    return _PASSWORD.sub(r"\1***@", url)


def open_store(url: str | None = None) -> Store:
    """Open the store a URL names.

    Args:
        url: ``sqlite:///relative/path.db`` (relative to the working directory),
            ``sqlite:////absolute/path.db`` or ``sqlite:///:memory:``. ``None`` =
            the ``store`` setting (``COHORTLAB_STORE``, read now). Missing parent
            folders of the database file are created.

    Returns:
        An open :class:`Store`; close it (or use ``with``) when done.

    Raises:
        StoreError: a ``mongodb://`` URL (the MongoDB adapter is not part of this
            version), any other scheme, a host in an ``sqlite://`` URL, no path,
            a query string, or a database that cannot be opened. Passwords in the
            URL are not echoed.
    """
    if url is None:
        from manager.settings import get_settings

        url = get_settings().store
    if not isinstance(url, str):
        raise StoreError(
            f"store URL must be a str, got {type(url).__name__} {url!r}; allowed: {_ALLOWED}"
        )
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme in ("mongodb", "mongodb+srv") and sep:
        raise StoreError(
            "the MongoDB adapter is not part of this version of cohortlab; use an SQLite "
            f"store URL ({_ALLOWED}); the embedded default is {_EMBEDDED_DEFAULT!r}"
        )
    if scheme != "sqlite" or not sep:
        raise StoreError(
            f"store URL {_redact(text)!r} has an unsupported scheme; allowed: {_ALLOWED}"
        )
    if not rest.startswith("/"):
        raise StoreError(
            f"store URL {_redact(text)!r} names a host; SQLite URLs have none, "
            f"so use three slashes: {_ALLOWED}"
        )
    path = rest[1:]
    if not path:
        raise StoreError(f"store URL {text!r} has no database path; allowed: {_ALLOWED}")
    if "?" in path or "#" in path:
        raise StoreError(
            f"store URL {text!r} has a query string or fragment, which is not supported; "
            f"allowed: {_ALLOWED}"
        )
    if path == ":memory:":
        return SQLiteStore(":memory:")
    db_path = Path(path)
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the folder {str(db_path.parent)!r} for store URL {text!r}: {exc}"
        ) from exc
    return SQLiteStore(db_path)
