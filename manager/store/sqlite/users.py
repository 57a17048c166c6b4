"""The SQLite adapter's users port (:class:`~manager.store.ports.users.UsersStore`):
the ``users`` table of migration 0010 (``name`` unique)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from manager.store.documents.users import USER_FIELDS, check_user_name, prepare_user
from manager.store.documents.values import timestamp_or_now
from manager.store.documents.values import check_id, require_str
from manager.store.errors import NotFound, StoreError
from manager.store.sqlite.connection import SQLiteConnection

__all__ = ["SQLiteUsers"]

_COLUMNS = ", ".join(USER_FIELDS)


def _row(row: sqlite3.Row | None, what: str) -> dict[str, Any]:
    if row is None:
        raise NotFound(f"no user {what}")
    return {k: row[k] for k in USER_FIELDS}


class SQLiteUsers(SQLiteConnection):
    """Implements :class:`~manager.store.ports.users.UsersStore` on SQLite (a
    mixin of :class:`~manager.store.sqlite.SQLiteStore`)."""

    def create_user(self, doc: dict[str, Any]) -> dict[str, Any]:
        user = prepare_user(doc)
        with self._transaction(write=True) as conn:
            clash = conn.execute("SELECT user_id, name FROM users WHERE user_id = ? OR name = ?",
                                 (user["user_id"], user["name"])).fetchone()
            if clash is not None:
                field = "name" if clash["name"] == user["name"] else "user_id"
                raise StoreError(f"a user with this {field} exists: {user[field]!r}")
            conn.execute(f"INSERT INTO users ({_COLUMNS}) VALUES ({', '.join('?' * len(USER_FIELDS))})",
                         tuple(user[k] for k in USER_FIELDS))
        return dict(user)

    def get_user(self, user_id: str) -> dict[str, Any]:
        user_id = check_id(user_id, "user_id")
        with self._transaction(write=False) as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE user_id = ?", (user_id,)).fetchone()
        return _row(row, f"with id {user_id!r}")

    def get_user_by_name(self, name: str) -> dict[str, Any]:
        name = check_user_name(name)
        with self._transaction(write=False) as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
        return _row(row, f"named {name!r}")

    def list_users(self) -> list[dict[str, Any]]:
        with self._transaction(write=False) as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY created_at, name").fetchall()
        return [{k: row[k] for k in USER_FIELDS} for row in rows]

    def update_user_token(self, user_id: str, token_hash: str, at: str | datetime | None = None) -> dict[str, Any]:
        user_id = check_id(user_id, "user_id")
        token_hash = require_str(token_hash, "user token_hash")
        moment = timestamp_or_now(at, "rotated_at")
        with self._transaction(write=True) as conn:
            done = conn.execute("UPDATE users SET token_hash = ?, rotated_at = ? WHERE user_id = ?",
                                (token_hash, moment, user_id)).rowcount
            row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE user_id = ?", (user_id,)).fetchone()
        if not done:
            raise NotFound(f"no user with id {user_id!r}")
        return _row(row, f"with id {user_id!r}")

    def revoke_user(self, user_id: str, at: str | datetime | None = None) -> dict[str, Any]:
        user_id = check_id(user_id, "user_id")
        moment = timestamp_or_now(at, "revoked_at")
        with self._transaction(write=True) as conn:
            conn.execute("UPDATE users SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                         (moment, user_id))
            row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE user_id = ?", (user_id,)).fetchone()
        return _row(row, f"with id {user_id!r}")
