"""The MongoDB adapter's users port (:class:`~manager.store.ports.users.UsersStore`):
the ``users`` collection of migration 0010 (``_id = user_id``; unique index on ``name``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from manager.store.documents.users import USER_FIELDS, check_user_name, prepare_user
from manager.store.documents.values import timestamp_or_now
from manager.store.documents.values import check_id, require_str
from manager.store.errors import NotFound, StoreError
from manager.store.mongo.client import MongoClientBase
from manager.store.mongo.names import USERS

__all__ = ["MongoUsers"]

_PROJECTION = {"_id": 0, **{k: 1 for k in USER_FIELDS}}


def _user(row: dict[str, Any] | None, what: str) -> dict[str, Any]:
    if row is None:
        raise NotFound(f"no user {what}")
    return {k: row.get(k) for k in USER_FIELDS}


class MongoUsers(MongoClientBase):
    """Implements :class:`~manager.store.ports.users.UsersStore` on MongoDB (a
    mixin of :class:`~manager.store.mongo.MongoStore`)."""

    def create_user(self, doc: dict[str, Any]) -> dict[str, Any]:
        user = prepare_user(doc)

        async def insert() -> None:
            coll = self._coll(USERS)
            for field in ("name", "user_id"):
                if await coll.find_one({field: {"$eq": user[field]}}, {"_id": 1}) is not None:
                    raise StoreError(f"a user with this {field} exists: {user[field]!r}")
            try:
                await coll.insert_one({"_id": user["user_id"], **user})
            except DuplicateKeyError:  # a concurrent create won the race
                raise StoreError(f"a user with this name or user_id exists: {user['name']!r}") from None

        self._call(insert())
        return dict(user)

    def _find_user(self, query: dict[str, Any], what: str) -> dict[str, Any]:
        async def read() -> Any:
            return await self._coll(USERS).find_one(query, _PROJECTION)

        return _user(self._call(read()), what)

    def get_user(self, user_id: str) -> dict[str, Any]:
        user_id = check_id(user_id, "user_id")
        return self._find_user({"_id": {"$eq": user_id}}, f"with id {user_id!r}")

    def get_user_by_name(self, name: str) -> dict[str, Any]:
        name = check_user_name(name)
        return self._find_user({"name": {"$eq": name}}, f"named {name!r}")

    def list_users(self) -> list[dict[str, Any]]:
        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(USERS).find({}, _PROJECTION)
            return [_user(row, "") async for row in cursor]

        return sorted(self._call(read()), key=lambda u: (u["created_at"], u["name"]))

    def _update_user(self, user_id: str, query: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
        async def update() -> Any:
            coll = self._coll(USERS)
            await coll.find_one_and_update({"_id": {"$eq": user_id}, **query}, {"$set": change},
                                           return_document=ReturnDocument.AFTER)
            return await coll.find_one({"_id": {"$eq": user_id}}, _PROJECTION)

        return _user(self._call(update()), f"with id {user_id!r}")

    def update_user_token(self, user_id: str, token_hash: str, at: str | datetime | None = None) -> dict[str, Any]:
        user_id = check_id(user_id, "user_id")
        token_hash = require_str(token_hash, "user token_hash")
        return self._update_user(user_id, {}, {"token_hash": token_hash, "rotated_at": timestamp_or_now(at, "rotated_at")})

    def revoke_user(self, user_id: str, at: str | datetime | None = None) -> dict[str, Any]:
        user_id = check_id(user_id, "user_id")
        return self._update_user(user_id, {"revoked_at": None}, {"revoked_at": timestamp_or_now(at, "revoked_at")})
