"""Contract of the Bayesian-search half of the learning port
(:class:`manager.store.ports.learning.LearningStore`) on every adapter: trials
numbered without gaps (also under concurrency), studies, and the settings a
study must be resumed with."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from manager.store import InvalidDocument, Store, StoreError, StudyMismatch
from tests.manager.store.builders import SPACE_META, Opener, make_trial


# -- learning: search trials --------------------------------------------------------------


def test_trials_round_trip_in_index_order(store: Store) -> None:
    assert store.list_trials("wf:daily") == []
    before = datetime.now(timezone.utc)
    assert store.save_trial("wf:daily", make_trial(0, value=1.25, seconds=3.5)) == 0
    assert store.save_trial("wf:daily", make_trial(1, value=np.float32(0.5))) == 1
    assert store.save_trial("wf:daily", make_trial(2, value=np.int64(2))) == 2
    trials = store.list_trials("wf:daily")
    assert [t["index"] for t in trials] == [0, 1, 2]
    assert list(trials[0]) == ["index", "params", "value", "seconds", "saved_at"]
    assert trials[0]["params"] == make_trial(0)["params"]
    assert trials[0]["seconds"] == 3.5
    assert [t["value"] for t in trials] == [1.25, 0.5, 2.0]
    assert all(type(t["value"]) is float for t in trials)
    stamps = [datetime.fromisoformat(t["saved_at"]) for t in trials]
    assert all(s.utcoffset() == timedelta(0) for s in stamps)
    assert stamps == sorted(stamps) and stamps[0] >= before - timedelta(seconds=1)


def test_studies_number_their_trials_independently(store: Store) -> None:
    assert [store.save_trial("a", make_trial(i)) for i in range(3)] == [0, 1, 2]
    assert [store.save_trial("b", make_trial(i)) for i in range(2)] == [0, 1]
    assert store.save_trial("a", make_trial(3)) == 3
    assert [t["params"]["pop"] for t in store.list_trials("a")] == [20, 21, 22, 23]
    assert [t["params"]["pop"] for t in store.list_trials("b")] == [20, 21]


def test_trials_resume_across_reopen(open_same: Opener) -> None:
    first = open_same()
    for i in range(3):
        assert first.save_trial("resume", make_trial(i)) == i
    first.close()
    second = open_same()  # a new process resuming the search
    done = second.list_trials("resume")
    assert [t["index"] for t in done] == [0, 1, 2]
    assert [t["params"] for t in done] == [make_trial(i)["params"] for i in range(3)]
    assert second.save_trial("resume", make_trial(3)) == 3
    assert second.save_trial("resume", make_trial(4)) == 4
    second.close()
    third = open_same()
    trials = third.list_trials("resume")
    assert [t["index"] for t in trials] == [0, 1, 2, 3, 4]
    assert [t["value"] for t in trials] == [-0.5 * i for i in range(5)]


def test_trials_appended_concurrently_get_consecutive_indexes(open_same: Opener) -> None:
    stores = [open_same(), open_same()]  # two connections to one database
    errors: list[BaseException] = []
    returned: list[tuple[int, int, int]] = []

    def work(worker: int) -> None:
        try:
            for k in range(10):
                index = stores[worker % 2].save_trial("shared", make_trial(k, worker=worker, k=k))
                returned.append((index, worker, k))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(i for i, _, _ in returned) == list(range(40))
    trials = stores[0].list_trials("shared")
    assert [t["index"] for t in trials] == list(range(40))
    # Each index holds the trial that was told it, and each worker's trials keep their order.
    by_index = {t["index"]: (t["worker"], t["k"]) for t in trials}
    assert all(by_index[i] == (w, k) for i, w, k in returned)
    for worker in range(4):
        assert [t["k"] for t in trials if t["worker"] == worker] == list(range(10))


def test_list_studies_summarises_each_study(store: Store) -> None:
    assert store.list_studies() == []
    for value in (0.4, -1.5, 2.0):
        store.save_trial("alpha", make_trial(0, value=value))
    store.save_trial("beta", make_trial(0, value=3))
    store.save_study_meta("gamma", {"space": {"fast": [2, 10]}})
    studies = store.list_studies()
    assert [s["study"] for s in studies] == ["gamma", "beta", "alpha"]  # most recently updated first
    by_name = {s["study"]: s for s in studies}
    alpha = by_name["alpha"]
    assert list(alpha) == ["study", "trials", "best_value", "updated_at", "meta"]
    assert alpha["trials"] == 3 and alpha["best_value"] == -1.5 and alpha["meta"] is None
    assert alpha["updated_at"] == store.list_trials("alpha")[-1]["saved_at"]
    assert by_name["beta"]["best_value"] == 3.0 and type(by_name["beta"]["best_value"]) is float
    assert by_name["gamma"] == {
        "study": "gamma",
        "trials": 0,
        "best_value": None,
        "updated_at": by_name["gamma"]["updated_at"],
        "meta": {"space": {"fast": [2, 10]}},
    }
    store.save_trial("alpha", make_trial(1, value=-2.0))
    studies = store.list_studies()
    assert studies[0]["study"] == "alpha" and studies[0]["trials"] == 4
    assert studies[0]["best_value"] == -2.0


@pytest.mark.parametrize(
    ("study", "trial", "message"),
    [
        ("bad study", make_trial(0), "study 'bad study' is not valid"),
        ("", make_trial(0), "study '' is not valid"),
        ("s", [0.1, 0.5], "trial must be a dict"),
        ("s", {"value": 1.0}, "trial is missing 'params'"),
        ("s", {"params": [0.1, 0.5], "value": 1.0}, "trial params must be a dict"),
        ("s", {"params": {"a": 1}}, "trial value must be a finite number"),
        ("s", {"params": {"a": 1}, "value": None}, "trial value must be a finite number"),
        ("s", {"params": {"a": 1}, "value": "0.5"}, "trial value must be a finite number"),
        ("s", {"params": {"a": 1}, "value": True}, "trial value must be a finite number"),
        ("s", {"params": {"a": 1}, "value": float("nan")}, "trial value=nan is not a finite number"),
        ("s", {"params": {"a": 1}, "value": float("-inf")}, "trial value=-inf is not a finite number"),
        ("s", {"params": {"a": float("inf")}, "value": 1.0}, r"trial\.params\.a: float inf"),
        ("s", {"params": {"a": {1, 2}}, "value": 1.0}, r"trial\.params\.a: set"),
        ("s", make_trial(0, index=4), r"store-set keys \['index'\]"),
        ("s", make_trial(0, saved_at="2025-01-01T00:00:00Z"), r"store-set keys \['saved_at'\]"),
        ("s", make_trial(0, started=datetime(2025, 1, 1)), r"trial\.started: datetime"),
    ],
)
def test_save_trial_refuses_bad_input(store: Store, study: Any, trial: Any, message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.save_trial(study, trial)
    assert store.list_studies() == []
    # A refused trial uses no index.
    assert store.save_trial("s", make_trial(0)) == 0


def test_list_trials_refuses_a_bad_study_name(store: Store) -> None:
    with pytest.raises(InvalidDocument, match="study 'a b' is not valid"):
        store.list_trials("a b")
    with pytest.raises(InvalidDocument, match="study None is not valid"):
        store.get_study_meta(None)  # type: ignore[arg-type]


def test_study_meta_round_trip_and_resume_check(open_same: Opener) -> None:
    store = open_same()
    assert store.get_study_meta("s1") is None
    store.save_study_meta("s1", SPACE_META)
    assert store.get_study_meta("s1") == SPACE_META
    store.save_study_meta("s1", {**SPACE_META, "seed": 7.0})  # same settings: accepted, unchanged
    store.close()
    store = open_same()
    assert store.get_study_meta("s1") == SPACE_META
    other = {
        **SPACE_META,
        "space": {"mutpb": [0.05, 0.9, "uniform"], "pop": [10, 60], "cxpb": [0.1, 0.9]},
        "seed": True,
    }
    del other["objective"]
    with pytest.raises(StudyMismatch) as info:
        store.save_study_meta("s1", other)
    message = str(info.value)
    assert "study 's1' was started with other settings" in message
    assert "space.mutpb: stored [0.05, 0.5, 'uniform'], given [0.05, 0.9, 'uniform']" in message
    assert "space.cxpb: stored <missing>, given [0.1, 0.9]" in message
    assert "objective: stored 'neg_oos_sharpe', given <missing>" in message
    assert "seed: stored 7, given True" in message
    assert isinstance(info.value, StoreError)
    assert info.value.study == "s1"
    assert [path for path, _, _ in info.value.differences] == [
        "space.mutpb",
        "space.cxpb",
        "objective",
        "seed",
    ]
    assert store.get_study_meta("s1") == SPACE_META  # nothing changed
    store.save_study_meta("s1", other, replace=True)
    assert store.get_study_meta("s1") == other


def test_study_meta_is_independent_of_trials(store: Store) -> None:
    store.save_trial("s2", make_trial(0))
    assert store.get_study_meta("s2") is None
    store.save_study_meta("s2", {"space": {}})
    assert store.save_trial("s2", make_trial(1)) == 1
    (entry,) = store.list_studies()
    assert entry["trials"] == 2 and entry["meta"] == {"space": {}}


@pytest.mark.parametrize(
    ("study", "meta", "message"),
    [
        ("bad study", {}, "study 'bad study' is not valid"),
        ("s", ["mutpb"], "study meta must be a dict"),
        ("s", {"space": {"a": (0, float("nan"))}}, r"study meta\.space\.a\[1\]: float nan"),
        ("s", {"space": range(3)}, r"study meta\.space: range"),
    ],
)
def test_save_study_meta_refuses_bad_input(store: Store, study: Any, meta: Any, message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.save_study_meta(study, meta)
    assert store.list_studies() == []
