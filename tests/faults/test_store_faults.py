"""Store faults tell the truth: real faults on a real SQLite file.

* a disk that fills: the store on its own small tmpfs (``mount -t tmpfs``; CI runs
  as root), filled with a file until ``ENOSPC``;
* a read-only file: a read-only bind mount of the store's folder (``chmod`` does not
  stop root, and Linux refuses to remount a filesystem read-only while a file on it
  is open for writing, so a connection cannot be made read-only under its feet --
  the process that writes the run opens the store through the read-only mount);
* the classification that decides retries (:func:`manager.tasks.is_final`).
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

from manager.launch import execute_cohort
from manager.runner import BarsRequest, CohortRequest
from manager.store import SQLiteStore, StoreError, StoreUnavailable, new_run_id
from manager.tasks import is_final

REQ = CohortRequest(bars=BarsRequest(start="2024-01-01", end="2024-01-02"), agents=4, seed_from="random",
                    baselines=0)


def _mount(*args: str) -> None:
    r = subprocess.run(["mount", *args], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"mounting is not permitted here (needs root / CAP_SYS_ADMIN): {r.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 3 MB tmpfs of its own (unmounted at the end)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    _mount("-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(folder: Path) -> Path:
    """Fill the filesystem of ``folder`` up to ENOSPC; returns the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 512):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def _created(store: SQLiteStore) -> str:
    return store.create_run({"run_id": new_run_id(), "kind": "cohort", "config": {}, "genomes": [],
                             "data_label": "test"})


def test_a_full_disk_raises_the_real_cause_as_a_permanent_store_error(small_disk: Path) -> None:
    store = SQLiteStore(small_disk / "runs.db")
    try:
        run_id = _created(store)
        filler = _fill(small_disk)
        with pytest.raises(StoreError) as caught:
            for i in range(200):  # big audit events until the WAL cannot grow
                store.record_audit({"kind": "filler", "actor": "test", "at": "2024-01-01T00:00:00+00:00",
                                    "details": {"blob": uuid.uuid4().hex * 2000, "i": i}})
        err = caught.value
        assert "full" in str(err) and "SQLITE_FULL" in str(err), str(err)
        assert "cannot rollback" not in str(err)
        assert isinstance(err.__cause__, sqlite3.Error)  # the original error, chained
        assert not isinstance(err, StoreUnavailable) and is_final(err)  # permanent: never retried
        filler.unlink()  # space again: the same connection works, nothing half-written
        store.fail_run(run_id, "after the disk was full")
        assert store.get_run(run_id)["status"] == "failed"
    finally:
        store.close()


def test_a_cohort_on_a_full_disk_fails_with_the_disk_full_reason(small_disk: Path) -> None:
    store = SQLiteStore(small_disk / "runs.db")
    try:
        run_id = new_run_id()
        stage_seen = []

        def on_stage(stage: str) -> None:
            stage_seen.append(stage)
            if stage == "simulating":  # the run exists: fill the disk under it
                _fill(small_disk)

        with pytest.raises(StoreError) as caught:
            execute_cohort(REQ, store, run_id=run_id, on_stage=on_stage)
        assert "SQLITE_FULL" in str(caught.value) and "cannot rollback" not in str(caught.value)
        assert is_final(caught.value)
        run = store.get_run(run_id)
        if run["status"] == "failed":  # the small failure record still fitted
            assert "SQLITE_FULL" in run["reason"]
        else:  # nothing fits: the reason reaches the caller, with a note saying the run could not be failed
            assert run["status"] == "running"
            assert any("could not be stored as failed" in n for n in getattr(caught.value, "__notes__", []))
    finally:
        store.close()


@pytest.fixture
def read_only_view(tmp_path: Path):
    """``(rw folder, ro folder)``: the same folder, the second through a read-only bind mount."""
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    _mount("--bind", "-o", "ro", str(rw), str(ro))
    try:
        yield rw, ro
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


def test_a_read_only_store_fails_permanently_and_the_reason_reaches_the_caller(read_only_view) -> None:
    rw, ro = read_only_view
    writer = SQLiteStore(rw / "runs.db")  # keeps the WAL files, so the read-only view can open the file
    try:
        run_id = _created(writer)  # the run exists and is ``running``
        reader = SQLiteStore(ro / "runs.db", migrate=False)
        try:
            with pytest.raises(StoreError) as caught:
                execute_cohort(REQ, reader, run_id=run_id)  # takes the run over, then cannot write
            err = caught.value
            assert "readonly" in str(err) and "SQLITE_READONLY" in str(err), str(err)
            assert not isinstance(err, StoreUnavailable) and is_final(err)
            assert any("could not be stored as failed" in n for n in err.__notes__)
        finally:
            reader.close()
        # the store cannot say ``failed`` (it cannot be written); a writable process can
        from manager.runner import _fail
        _fail(writer, run_id, err, 0.0)
        run = writer.get_run(run_id)
        assert run["status"] == "failed" and "SQLITE_READONLY" in run["reason"]
    finally:
        writer.close()


def test_busy_and_locked_are_transient(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    a = SQLiteStore(db)
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        a._connection().execute("PRAGMA busy_timeout = 50")
        with pytest.raises(StoreUnavailable) as caught:
            _created(a)
        assert "SQLITE_BUSY" in str(caught.value) and not is_final(caught.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
        a.close()


def test_a_raw_sqlite_error_is_not_counted_as_transient() -> None:
    assert is_final(sqlite3.OperationalError("database or disk is full"))
    assert is_final(StoreError("x"))
    assert not is_final(StoreUnavailable("x")) and not is_final(ConnectionError("x"))
