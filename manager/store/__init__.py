"""Persistence for cohortlab: the storage ports and their adapters.

Use :func:`open_store` to get a :class:`Store` for a URL (default: the
``COHORTLAB_STORE`` setting, itself defaulting to ``sqlite:///./cohortlab.db``):
``sqlite:///...`` opens the embedded :class:`SQLiteStore`,
``mongodb://host:port/dbname`` the :class:`~manager.store.mongo.MongoStore`
(imported on first use, so SQLite users never load the MongoDB driver).

Layout: one port per aggregate (:mod:`manager.store.ports`: :class:`RunStore`,
:class:`LearningStore`, :class:`AuditStore`, :class:`PolicyStore`) combined in :class:`Store`
(:mod:`manager.store.base`); the document checks every adapter shares
(:mod:`manager.store.documents`); the errors (:mod:`manager.store.errors`);
one module per aggregate in each adapter (:mod:`manager.store.sqlite`,
:mod:`manager.store.mongo`). The schema belongs to the ``migrations`` package
above this one, which this package never imports: :mod:`manager.bootstrap`
installs it as the migrator of :mod:`manager.store.schema`.
"""

from __future__ import annotations

import re
from pathlib import Path

from manager.store.base import Store
from manager.store.documents import RUN_HEADER_FIELDS, new_run_id
from manager.store.errors import (
    InvalidDocument,
    NotFound,
    RunLeased,
    RunNotFound,
    RunStateError,
    StoreError,
    StoreUnavailable,
    StudyMismatch,
)
from manager.store.ports import AuditStore, LearningStore, PolicyStore, RunStore
from manager.store.ports import UsersStore
from manager.store.ports import CampaignStore, PromotionStore
from manager.store.ports import DeploymentStore
from manager.store.ports import AlertStore
from manager.store.ports import IntentStore
from manager.store.pages import offset_pages
from manager.store.sqlite import SQLiteStore

__all__ = [
    "AuditStore",
    "InvalidDocument",
    "LearningStore",
    "MongoStore",
    "NotFound",
    "PolicyStore",
    "RUN_HEADER_FIELDS",
    "RunLeased",
    "RunNotFound",
    "RunStateError",
    "RunStore",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StudyMismatch",
    "UsersStore",
    "CampaignStore",
    "PromotionStore",
    "DeploymentStore",
    "AlertStore",
    "IntentStore",
    "new_run_id",
    "offset_pages",
    "open_store",
]

_ALLOWED = "sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite:///:memory:"
_ALLOWED_MONGO = "mongodb://host:port/dbname (database default 'cohortlab')"
_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def _redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe for error messages)."""
    return _PASSWORD.sub(r"\1***@", url)


def __getattr__(name: str):  # lazy: ``from manager.store import MongoStore``
    if name == "MongoStore":
        from manager.store.mongo import MongoStore

        return MongoStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Open the store a URL names.

    Args:
        url: ``sqlite:///relative/path.db`` (relative to the working directory),
            ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``, or
            ``mongodb://[user:pass@]host:port/dbname[?options]`` (also
            ``mongodb+srv://``; database name from the path, default
            ``cohortlab``). ``None`` = the ``store`` setting (``COHORTLAB_STORE``,
            read now). Missing parent folders of an SQLite file are created.
        migrate: apply the pending schema migrations (the migrator installed
            in :mod:`manager.store.schema`, i.e. the ``migrations`` package)
            before returning: a new database gets its tables and indexes, an
            older one is upgraded in place. ``False`` opens the database as it
            is (``cohortlab migrate --status`` does that).

    Returns:
        An open :class:`Store`; close it (or use ``with``) when done.

    Raises:
        StoreError: an unsupported scheme, a host in an ``sqlite://`` URL, no
            path, a query string in an SQLite URL, a database that cannot be
            opened or reached, or a failed migration. Passwords in the URL are
            not echoed.
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
        from manager.store.mongo import MongoStore

        return MongoStore(text, migrate=migrate)
    if scheme != "sqlite" or not sep:
        raise StoreError(
            f"store URL {_redact(text)!r} has an unsupported scheme; allowed: {_ALLOWED}, "
            f"{_ALLOWED_MONGO}"
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
        return SQLiteStore(":memory:", migrate=migrate)
    db_path = Path(path)
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the folder {str(db_path.parent)!r} for store URL {text!r}: {exc}"
        ) from exc
    return SQLiteStore(db_path, migrate=migrate)
