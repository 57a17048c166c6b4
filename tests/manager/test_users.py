"""manager.users (issue 13): tokens hashed with argon2, authentication of personal and
bootstrap tokens, revocation and rotation, the permission matrix, audit events."""
from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from manager import users
from manager.store import SQLiteStore


@pytest.fixture()
def store(tmp_path):
    with SQLiteStore(tmp_path / "users.db") as s:
        yield s


def test_token_is_stored_only_as_an_argon2_hash(store):
    user, token = users.add_user(store, "otto", "ops", actor="cli:test")
    assert "token_hash" not in user and token.startswith("clab_" + user["user_id"] + "_")
    stored = store.get_user_by_name("otto")
    assert stored["token_hash"] != token and token not in stored["token_hash"]
    assert stored["token_hash"].startswith("$argon2id$")
    assert PasswordHasher().verify(stored["token_hash"], token)
    assert users.parse_token(token) == user["user_id"]
    assert users.authenticate(store, token, None) == users.Principal("otto", "ops")


def test_bootstrap_token_is_the_bootstrap_admin(store):
    principal = users.authenticate(store, "boot-secret", "boot-secret")
    assert principal == users.BOOTSTRAP and principal.name == "admin:bootstrap" and principal.role == "admin"
    assert principal.actor == "admin:bootstrap" and principal.roles == frozenset({"admin"})
    assert users.authenticate(store, "boot-secreT", "boot-secret") is None
    assert users.authenticate(store, "boot-secret", None) is None
    assert users.authenticate(store, "", "boot-secret") is None


def test_wrong_unknown_and_revoked_tokens_are_refused(store):
    _, token = users.add_user(store, "rita", "risk")
    assert users.authenticate(store, token[:-1] + ("A" if token[-1] != "A" else "B"), None) is None
    assert users.authenticate(store, "clab_0123456789ab_" + "x" * 43, None) is None  # unknown user
    assert users.authenticate(store, "not a token", None) is None
    revoked = users.revoke_user(store, "rita", actor="cli:test")
    assert revoked["revoked_at"]
    assert users.authenticate(store, token, None) is None
    with pytest.raises(users.UserError, match="revoked"):
        users.rotate_token(store, "rita")


def test_rotate_invalidates_the_old_token(store):
    _, old = users.add_user(store, "ada", "admin")
    new = users.rotate_token(store, "ada", actor="cli:test")
    assert new != old
    assert users.authenticate(store, old, None) is None
    assert users.authenticate(store, new, None) == users.Principal("ada", "admin")


def test_add_refuses_bad_roles_names_and_duplicates(store):
    with pytest.raises(users.UserError, match="allowed: viewer, ops, risk, admin"):
        users.add_user(store, "x", "boss")
    with pytest.raises(users.UserError):
        users.add_user(store, "has space", "ops")
    with pytest.raises(users.UserError, match="bootstrap"):
        users.add_user(store, "admin:bootstrap", "admin")
    users.add_user(store, "otto", "ops")
    with pytest.raises(users.UserError, match="exists"):
        users.add_user(store, "otto", "risk")
    with pytest.raises(users.UserError, match="no user named"):
        users.revoke_user(store, "nobody")
    assert [u["name"] for u in users.list_users(store)] == ["otto"]
    assert all("token_hash" not in u for u in users.list_users(store))


def test_changes_are_audited_without_secrets(store):
    _, token = users.add_user(store, "otto", "ops", actor="cli:me")
    new = users.rotate_token(store, "otto", actor="cli:me")
    users.revoke_user(store, "otto", actor="cli:me")
    events = store.list_audit(10)
    assert [(e["kind"], e["actor"], e["details"]["user"]) for e in events] == [
        ("user.revoke", "cli:me", "otto"), ("user.rotate", "cli:me", "otto"), ("user.add", "cli:me", "otto")]
    text = repr(events)
    assert token not in text and new not in text and "argon2" not in text


@pytest.mark.parametrize("role, allowed", [
    ("viewer", set()),
    ("ops", {"launch", "propose", "approve:ops", "reject", "rollback", "pause"}),
    ("risk", {"approve:risk", "reject", "kill_switch", "rollback", "extend", "pause"}),
    ("admin", {"launch", "propose", "reject", "kill_switch", "manage_users", "rollback", "extend", "pause"}),
])
def test_permission_matrix(role, allowed):
    principal = users.Principal("p", role)
    assert {a for a in users.PERMISSIONS if users.can(principal, a)} == allowed
    for action in set(users.PERMISSIONS) - allowed:
        with pytest.raises(users.PermissionDenied) as info:
            users.require(principal, action)
        assert isinstance(info.value, ValueError)
        assert f"'p' (role {role})" in str(info.value)
        assert all(r in str(info.value) for r in users.PERMISSIONS[action])
    assert not users.can(None, "launch")


def test_session_principal_ends_on_rotate_and_revoke(store):
    users.add_user(store, "otto", "ops")
    principal = users.Principal("otto", "ops")
    stamp = users.session_stamp(store, principal)
    assert users.principal_of_session(store, "otto", stamp, None) == principal
    users.rotate_token(store, "otto")
    assert users.principal_of_session(store, "otto", stamp, None) is None
    stamp = users.session_stamp(store, principal)
    users.revoke_user(store, "otto")
    assert users.principal_of_session(store, "otto", stamp, None) is None
    assert users.principal_of_session(store, "admin:bootstrap", "", "tok") == users.BOOTSTRAP
    assert users.principal_of_session(store, "admin:bootstrap", "", None) is None
