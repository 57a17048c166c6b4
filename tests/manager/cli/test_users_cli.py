"""``cohortlab users add|list|revoke|rotate`` (issue 13): the token printed once, no hashes
listed, revoke and rotate, exit 2 for a bad role or an unknown user, audit events."""
from __future__ import annotations

from manager import users
from manager.store import open_store


def _token(output: str) -> str:
    return next(line.strip() for line in output.splitlines() if line.strip().startswith("clab_"))


def test_users_add_list_revoke_rotate(cli, store_url):
    res = cli("users", "add", "otto", "--role", "ops", store_url=store_url)
    assert res.exit_code == 0, res.output
    token = _token(res.output)
    assert "shown once" in res.output
    with open_store(store_url) as store:
        assert users.authenticate(store, token, None) == users.Principal("otto", "ops")

    listed = cli("users", "list", store_url=store_url)
    assert listed.exit_code == 0 and "otto" in listed.output and "ops" in listed.output
    assert "argon2" not in listed.output and token not in listed.output

    rotated = cli("users", "rotate", "otto", store_url=store_url)
    assert rotated.exit_code == 0, rotated.output
    new = _token(rotated.output)
    assert new != token
    with open_store(store_url) as store:
        assert users.authenticate(store, token, None) is None
        assert users.authenticate(store, new, None) is not None

    revoked = cli("users", "revoke", "otto", store_url=store_url)
    assert revoked.exit_code == 0 and "revoked user otto" in revoked.output
    with open_store(store_url) as store:
        assert users.authenticate(store, new, None) is None
        events = [e for e in store.list_audit(10) if e["kind"].startswith("user.")]
    assert [e["kind"] for e in events] == ["user.revoke", "user.rotate", "user.add"]
    assert all(e["actor"].startswith("cli") for e in events)


def test_users_errors_exit_2(cli, store_url):
    res = cli("users", "add", "x", "--role", "boss", store_url=store_url)
    assert res.exit_code == 2 and "allowed: viewer, ops, risk, admin" in res.output
    for command in ("revoke", "rotate"):
        res = cli("users", command, "nobody", store_url=store_url)
        assert res.exit_code == 2 and "no user named 'nobody'" in res.output
    assert cli("users", "add", "otto", "--role", "ops", store_url=store_url).exit_code == 0
    res = cli("users", "add", "otto", "--role", "risk", store_url=store_url)
    assert res.exit_code == 2 and "exists" in res.output
