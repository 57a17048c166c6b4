"""A tamper-evident ledger (issue 11): every stored transaction carries the hash
of its canonical content and of the transaction before it; the run keeps the
head; ``cohortlab ledger verify`` re-derives the chain and names the first broken
link, and ``--head`` checks it against a head kept outside the database (from
``cohortlab ledger export``).

Real tampering of a stored run: SQLite through ``sqlite3`` on the store's file,
MongoDB (nx-27017, or ``COHORTLAB_TEST_MONGODB_URL``) through the driver, as the
store contract tests reach raw documents.
"""
from __future__ import annotations

import copy
import hashlib
import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from typer.testing import CliRunner

from manager.cli import app
from manager.launch import execute_cohort
from manager.runner import BarsRequest, CohortRequest
from manager.store import SQLiteStore, StoreError
from simulator.engine import EngineConfig, run_engine
from simulator.kernel import UNITS
from simulator.ledger import GENESIS, build_journal, txn_hash
from simulator.ledger_chain import verify_chain
from tests.helpers import agents, market_from_prices
from tests.manager.store.mongo_server import fresh_database, shared_mongo_server, with_database

REQ = CohortRequest(bars=BarsRequest(start="2024-01-01", end="2024-01-02"), agents=4, seed_from="random",
                    baselines=0)
K = 9  # the transaction tampered with (a fill: 0 is the deposit, 1..4 the allocations)


# -- an independent computation of the chain (hashlib + json, not simulator.ledger) -----------


def independent_hash(txn: dict, prev: str) -> str:
    """SHA-256 of ``[seq, txn_id, bar, time, kind, memo, [[account, units, qty, symbol]...], prev]``
    as compact ASCII JSON, amounts in integer units of 1e-8 (the README's canonical form)."""
    legs = []
    for p in txn["postings"]:
        units = Decimal(p["amount"]) * 100_000_000
        assert units == units.to_integral_value()
        legs.append([p["account"], int(units), p["qty"], p["symbol"]])
    body = [txn["seq"], txn["txn_id"], txn["bar"], txn["time"], txn["kind"], txn["memo"], legs, prev]
    return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode("ascii")).hexdigest()


def independent_head(txns: list[dict]) -> str:
    prev = "0" * 64
    for t in txns:
        prev = independent_hash(t, prev)
    return prev


def test_chain_hash_matches_an_independent_computation() -> None:
    m = market_from_prices([100, 101, 99, 104, 103, 105], close=[101, 99, 104, 103, 105, 106])
    r = run_engine(m, np.array([1, 1, -1, -1, 0, 1], float)[None, :, None], agents(1, 1, alloc=[600 * UNITS]),
                   bankroll_units=1000 * UNITS, config=EngineConfig(fee_bps=10, slippage_bps=5))
    journal = build_journal(r, m.timestamps, m.symbols, ["a00"])
    dicts = journal.to_dicts()
    assert len(dicts) >= 4 and any(t["kind"] == "fill" for t in dicts)
    prev = GENESIS
    assert prev == "0" * 64
    for t in dicts:
        assert t["prev_hash"] == prev
        assert t["hash"] == independent_hash(t, prev) == txn_hash(t, prev)
        prev = t["hash"]
    assert journal.head == prev == independent_head(dicts)
    # the materialised transactions carry the same chain
    assert [t.to_dict() for t in journal] == dicts


# -- stored runs and raw tampering ----------------------------------------------------------


class SQLiteRaw:
    """Raw access to a SQLite store's file."""

    def __init__(self, path: Path, run_id: str):
        self.url, self.path, self.run_id = f"sqlite:///{path}", path, run_id

    def _conn(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None)

    def snapshot(self) -> Any:
        with self._conn() as c:
            return (c.execute("SELECT * FROM ledger WHERE run_id = ?", (self.run_id,)).fetchall(),
                    c.execute("SELECT summary FROM cohort_summaries WHERE run_id = ?", (self.run_id,)).fetchone()[0])

    def restore(self, snap: Any) -> None:
        rows, summary = snap
        c = self._conn()
        c.execute("DELETE FROM ledger WHERE run_id = ?", (self.run_id,))
        c.executemany(f"INSERT INTO ledger VALUES ({','.join('?' * len(rows[0]))})", rows)
        c.execute("UPDATE cohort_summaries SET summary = ? WHERE run_id = ?", (summary, self.run_id))
        c.close()

    def doc(self, seq: int) -> dict:
        c = self._conn()
        (doc,) = c.execute("SELECT doc FROM ledger WHERE run_id = ? AND seq = ?", (self.run_id, seq)).fetchone()
        c.close()
        return json.loads(doc)

    def set_doc(self, seq: int, doc: dict) -> None:
        c = self._conn()
        c.execute("UPDATE ledger SET doc = ? WHERE run_id = ? AND seq = ?", (json.dumps(doc), self.run_id, seq))
        c.close()

    def delete(self, seq: int) -> None:
        c = self._conn()
        c.execute("DELETE FROM ledger WHERE run_id = ? AND seq = ?", (self.run_id, seq))
        c.close()

    def swap(self, a: int, b: int) -> None:
        c = self._conn()
        c.execute("UPDATE ledger SET seq = -1 WHERE run_id = ? AND seq = ?", (self.run_id, a))
        c.execute("UPDATE ledger SET seq = ? WHERE run_id = ? AND seq = ?", (a, self.run_id, b))
        c.execute("UPDATE ledger SET seq = ? WHERE run_id = ? AND seq = -1", (b, self.run_id))
        c.close()

    def set_head(self, head: str) -> None:
        c = self._conn()
        (summary,) = c.execute("SELECT summary FROM cohort_summaries WHERE run_id = ?", (self.run_id,)).fetchone()
        summary = json.loads(summary)
        summary["ledger_chain"]["head"] = head
        c.execute("UPDATE cohort_summaries SET summary = ? WHERE run_id = ?", (json.dumps(summary), self.run_id))
        c.close()


class MongoRaw:
    """Raw access to a MongoStore's collections (through the store's own client)."""

    def __init__(self, store: Any, url: str, run_id: str):
        self.store, self.url, self.run_id = store, url, run_id

    def _run(self, fn: Any) -> Any:
        return self.store.run_async(fn)

    def snapshot(self) -> Any:
        async def read(db: Any) -> Any:
            return (await db["ledger"].find({"run_id": self.run_id}).to_list(None),
                    await db["cohort_summaries"].find_one({"_id": self.run_id}))
        return self._run(read)

    def restore(self, snap: Any) -> None:
        rows, summary = snap

        async def write(db: Any) -> None:
            await db["ledger"].delete_many({"run_id": self.run_id})
            await db["ledger"].insert_many(copy.deepcopy(rows))
            await db["cohort_summaries"].replace_one({"_id": self.run_id}, summary)
        self._run(write)

    def doc(self, seq: int) -> dict:
        async def read(db: Any) -> Any:
            return (await db["ledger"].find_one({"run_id": self.run_id, "seq": seq}))["doc"]
        return self._run(read)

    def set_doc(self, seq: int, doc: dict) -> None:
        async def write(db: Any) -> None:
            await db["ledger"].update_one({"run_id": self.run_id, "seq": seq}, {"$set": {"doc": doc}})
        self._run(write)

    def delete(self, seq: int) -> None:
        async def write(db: Any) -> None:
            await db["ledger"].delete_one({"run_id": self.run_id, "seq": seq})
        self._run(write)

    def swap(self, a: int, b: int) -> None:
        async def write(db: Any) -> None:
            await db["ledger"].update_one({"run_id": self.run_id, "seq": a}, {"$set": {"seq": -1}})
            await db["ledger"].update_one({"run_id": self.run_id, "seq": b}, {"$set": {"seq": a}})
            await db["ledger"].update_one({"run_id": self.run_id, "seq": -1}, {"$set": {"seq": b}})
        self._run(write)

    def set_head(self, head: str) -> None:
        async def write(db: Any) -> None:
            await db["cohort_summaries"].update_one({"_id": self.run_id},
                                                    {"$set": {"summary.ledger_chain.head": head}})
        self._run(write)


@pytest.fixture(scope="module")
def sqlite_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteRaw]:
    path = tmp_path_factory.mktemp("tamper") / "store.db"
    with SQLiteStore(path) as store:
        run_id = execute_cohort(REQ, store).run_id
    yield SQLiteRaw(path, run_id)


@pytest.fixture(scope="module")
def mongo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoRaw]:
    from manager.store.mongo import MongoStore

    with shared_mongo_server(tmp_path_factory) as server:
        database = fresh_database()
        store = MongoStore(server.url, database=database)
        try:
            run_id = execute_cohort(REQ, store).run_id
            yield MongoRaw(store, with_database(server.url, database), run_id)
        finally:
            store.close()
            server.drop(database)


@pytest.fixture(params=["sqlite", "mongo"])
def stored(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A completed run on each adapter, restored after the test."""
    raw = request.getfixturevalue(f"{request.param}_run")
    snap = raw.snapshot()
    try:
        yield raw
    finally:
        raw.restore(snap)


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "2000"})


def flat(res: Any) -> str:
    """The output with line wrapping undone."""
    return " ".join(res.output.split())


def verify(raw: Any, *extra: str) -> Any:
    return cli("ledger", "verify", raw.run_id, "--store", raw.url, *extra)


def test_untouched_run_verifies_and_keeps_its_head(stored: Any) -> None:
    res = verify(stored)
    assert res.exit_code == 0, res.output
    assert "PASS hash chain" in flat(res)
    exported = cli("ledger", "export", stored.run_id, "--store", stored.url)
    assert exported.exit_code == 0, exported.output
    doc = json.loads(exported.stdout)
    # the head is stored with the run (get_run's summary) and re-derives independently
    assert doc["chain"]["head"] == doc["chain"]["stored_head"] == independent_head(doc["transactions"])
    assert doc["chain"]["genesis"] == "0" * 64


def _edit_memo(raw: Any) -> None:
    d = raw.doc(K)
    d["memo"] = d["memo"] + " (edited)"
    raw.set_doc(K, d)


def _edit_seq(raw: Any) -> None:
    d = raw.doc(K)
    d["seq"] = 10_000
    raw.set_doc(K, d)


def _edit_amount(raw: Any) -> None:
    """Move 0.01 between two postings: the transaction still balances."""
    d = raw.doc(K)
    p0, p1 = d["postings"][0], d["postings"][1]
    p0["amount"] = str(Decimal(p0["amount"]) + Decimal("0.01"))
    p1["amount"] = str(Decimal(p1["amount"]) - Decimal("0.01"))
    raw.set_doc(K, d)


TAMPERING = {
    # what is done -> (the seq the first broken link names, what it says)
    "memo": (_edit_memo, K, "content does not match its hash"),
    "seq": (_edit_seq, 10_000, f"seq is 10000 at position {K}"),
    "amount": (_edit_amount, K, "content does not match its hash"),
    "delete": (lambda raw: raw.delete(K), K + 1, f"seq is {K + 1} at position {K}"),
    "reorder": (lambda raw: raw.swap(K, K + 1), K + 1, f"seq is {K + 1} at position {K}"),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERING))
def test_verify_names_the_first_broken_link(stored: Any, tamper: str) -> None:
    edit, seq, what = TAMPERING[tamper]
    edit(stored)
    res = verify(stored)
    assert res.exit_code == 1, res.output
    assert "FAIL hash chain" in flat(res)
    assert f"first broken link: seq {seq} (txn_id" in flat(res)
    assert what in flat(res)


def test_consistent_rewrite_is_caught_by_an_exported_head(stored: Any, tmp_path: Path) -> None:
    out = tmp_path / "ledger.json"
    res = cli("ledger", "export", stored.run_id, "--store", stored.url, "--out", str(out))
    assert res.exit_code == 0, res.output
    kept_head = json.loads(out.read_text())["chain"]["head"]
    # someone with write access edits a memo, re-hashes the rest of the chain and the stored head
    txns = json.loads(cli("ledger", "export", stored.run_id, "--store", stored.url).stdout)["transactions"]
    txns[K]["memo"] = "nothing to see here"
    prev = txns[K - 1]["hash"]
    for t in txns[K:]:
        t["prev_hash"] = prev
        t["hash"] = prev = txn_hash(t, prev)
        stored.set_doc(t["seq"], t)
    stored.set_head(prev)
    assert verify(stored).exit_code == 0  # consistent inside the database
    res = verify(stored, "--head", kept_head)
    assert res.exit_code == 1, res.output
    assert f"is not the expected head {kept_head}" in flat(res)


def test_export_round_trip(stored: Any, tmp_path: Path) -> None:
    out = tmp_path / "ledger.json"
    res = cli("ledger", "export", stored.run_id, "--store", stored.url, "--out", str(out))
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["run_id"] == stored.run_id
    assert doc["chain"]["transactions"] == len(doc["transactions"]) > K + 1
    rep = verify_chain(doc["transactions"], expected_head=doc["chain"]["head"])
    assert rep.ok and rep.head == doc["chain"]["head"]
    assert [t["seq"] for t in doc["transactions"]] == list(range(len(doc["transactions"])))
    assert verify(stored, "--head", doc["chain"]["head"]).exit_code == 0
    assert verify(stored, "--head", "f" * 64).exit_code == 1


def test_reappending_the_chain_is_a_no_op(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        run_id = execute_cohort(REQ, store).run_id
        ledger = store.get_ledger(run_id)
        assert store.append_ledger(run_id, ledger) == 0  # a retried task: same chain, nothing new
        changed = copy.deepcopy(ledger[K])
        changed["hash"] = "0" * 64
        with pytest.raises(StoreError, match="different content"):
            store.append_ledger(run_id, [changed])
        assert store.get_ledger(run_id) == ledger


def test_openssl_chain_kernel_equals_the_hashlib_path(monkeypatch) -> None:
    """The compiled chain (OpenSSL's SHA-256 called from numba) and the hashlib loop give the
    same hashes on a real multi-agent journal; and the compiled path is the one in use here."""
    from dataclasses import replace

    from evolution.toolbox import random_genomes
    from simulator import ledger_text
    from simulator.cohort import simulate_cohort
    from simulator.data import load_market
    from tests.helpers import BINANCE

    if not BINANCE.is_dir():
        pytest.skip("no shared bars")
    m = load_market(BINANCE, None, "2018-01-15", "2018-01-16", warmup_bars=50)
    genomes = [replace(g, symbols=tuple(m.symbols)) for g in random_genomes(6, m.symbols, seed=3, max_leverage=2.0)]
    assert ledger_text._native_sha256()  # libcrypto loads on this machine
    native = simulate_cohort(m, genomes, bankroll=1000.0).journal
    monkeypatch.setattr(ledger_text, "_force_python", [True])
    python = simulate_cohort(m, genomes, bankroll=1000.0).journal
    assert len(native.hashes) == len(python.hashes) > 100
    assert native.hashes == python.hashes
    dicts = native.to_dicts()
    assert dicts[-1]["hash"] == independent_head(dicts)
