"""Contract of the users port (:class:`manager.store.ports.users.UsersStore`) on every
adapter: users are created once per name and id, read by id and name, listed oldest
first, their token hash replaced, revoked once (idempotent); unknown users are NotFound."""

from __future__ import annotations

from typing import Any

import pytest

from manager.store import InvalidDocument, NotFound, StoreError
from manager.store.documents import USER_FIELDS
from tests.manager.store.builders import Opener


def user(user_id: str = "u1", name: str = "alice", role: str = "ops", **extra: Any) -> dict[str, Any]:
    return {"user_id": user_id, "name": name, "role": role, "token_hash": f"$argon2id$hash-of-{user_id}", **extra}


def test_create_and_read_back(open_same: Opener) -> None:
    store = open_same()
    stored = store.create_user(user(created_at="2025-03-01T10:00:00Z"))
    assert tuple(stored) == USER_FIELDS
    assert stored == {"user_id": "u1", "name": "alice", "role": "ops", "token_hash": "$argon2id$hash-of-u1",
                      "created_at": "2025-03-01T10:00:00.000000+00:00", "revoked_at": None, "rotated_at": None}
    assert store.get_user("u1") == stored
    assert store.get_user_by_name("alice") == stored
    reopened = open_same()
    assert reopened.get_user("u1") == stored  # persisted


def test_names_and_ids_are_unique(store) -> None:
    store.create_user(user())
    with pytest.raises(StoreError, match="name"):
        store.create_user(user("u2", "alice"))
    with pytest.raises(StoreError, match="user_id"):
        store.create_user(user("u1", "bob"))
    assert [u["name"] for u in store.list_users()] == ["alice"]


def test_list_oldest_first(store) -> None:
    store.create_user(user("u2", "zed", created_at="2025-03-01T10:00:00Z"))
    store.create_user(user("u1", "amy", created_at="2025-03-02T10:00:00Z"))
    store.create_user(user("u3", "bob", created_at="2025-03-01T10:00:00Z"))
    assert [u["name"] for u in store.list_users()] == ["bob", "zed", "amy"]


def test_unknown_users_are_not_found(store) -> None:
    with pytest.raises(NotFound):
        store.get_user("nobody")
    with pytest.raises(NotFound):
        store.get_user_by_name("nobody")
    with pytest.raises(NotFound):
        store.update_user_token("nobody", "h")
    with pytest.raises(NotFound):
        store.revoke_user("nobody")


@pytest.mark.parametrize("bad", [
    {"name": ""}, {"name": "has space"}, {"name": "-dash"}, {"name": "x" * 65}, {"user_id": "a/b"},
    {"role": ""}, {"token_hash": ""}, {"token_hash": None}, {"created_at": "yesterday"},
])
def test_bad_users_are_refused(store, bad) -> None:
    with pytest.raises(InvalidDocument):
        store.create_user({**user(), **bad})
    assert store.list_users() == []


def test_update_token_and_revoke(store) -> None:
    store.create_user(user())
    rotated = store.update_user_token("u1", "new-hash", at="2025-03-05T00:00:00Z")
    assert rotated["token_hash"] == "new-hash" and rotated["rotated_at"] == "2025-03-05T00:00:00.000000+00:00"
    assert store.get_user("u1") == rotated
    revoked = store.revoke_user("u1", at="2025-03-06T00:00:00Z")
    assert revoked["revoked_at"] == "2025-03-06T00:00:00.000000+00:00"
    again = store.revoke_user("u1", at="2025-03-07T00:00:00Z")  # idempotent: the first moment stays
    assert again == revoked == store.get_user_by_name("alice")
    with pytest.raises(InvalidDocument):
        store.update_user_token("u1", "")
