"""Contract of the point-in-time filters of the learning port on every adapter
(issue 10, part 1): populations, hall-of-fame versions, knowledge records and
search studies keep their training window, and ``trained_by`` returns only what
was trained on data that ended by then (on the market asked for); artefacts
without a window never match."""

from __future__ import annotations

import pytest

from manager.store import InvalidDocument, Store

M = "binance-5m|5m|BTC"
OTHER = "coinbase-1m|1m|USD"


def _w(start: str, end: str) -> dict[str, str]:
    return {"train_start": f"2018-01-{start}T00:00:00Z", "train_end": f"2018-01-{end}T00:00:00+00:00"}


def test_latest_population_trained_by(store: Store) -> None:
    store.save_population("old", [{"g": 0}], {"mode": "daily", "market": M})  # no window: never matched
    store.save_population("d12", [{"g": 1}], {"mode": "daily", "market": M, **_w("09", "12")})
    store.save_population("d15", [{"g": 2}], {"mode": "daily", "market": M, **_w("12", "15")})
    store.save_population("d20", [{"g": 3}], {"mode": "daily", "market": M, **_w("17", "20")})
    store.save_population("x14", [{"g": 4}], {"mode": "daily", "market": OTHER, **_w("11", "14")})
    assert store.latest_population("daily", market=M)["cycle_id"] == "d20"  # no filter: newest
    assert store.latest_population("daily", market=M, trained_by="2018-01-16T00:00:00Z")["cycle_id"] == "d15"
    # the bound is inclusive: trained on data ending exactly at t
    assert store.latest_population("daily", market=M, trained_by="2018-01-15T00:00:00Z")["cycle_id"] == "d15"
    assert store.latest_population(market=M, trained_by="2018-01-14T23:59:59Z")["cycle_id"] == "d12"
    assert store.latest_population(market=M, trained_by="2018-01-11T00:00:00Z") is None  # "old" never matches
    assert store.latest_population(trained_by="2018-01-14T12:00:00+00:00")["cycle_id"] == "x14"
    assert store.latest_population("intraday", market=M, trained_by="2018-02-01T00:00:00Z") is None
    pop = store.get_population("d15")
    assert pop["meta"]["train_start"] == "2018-01-12T00:00:00.000000+00:00"
    assert pop["meta"]["train_end"] == "2018-01-15T00:00:00.000000+00:00"


def test_latest_hall_of_fame_trained_by(store: Store) -> None:
    store.save_hall_of_fame([{"g": 0}], source="run-1", market=M)  # no window: never matched
    store.save_hall_of_fame([{"g": 1}], source="c12", market=M, train_start="2018-01-09T00:00:00Z",
                            train_end="2018-01-12T00:00:00Z")
    store.save_hall_of_fame([{"g": 2}], source="c20", market=M, train_start="2018-01-17T00:00:00Z",
                            train_end="2018-01-20T00:00:00Z")
    store.save_hall_of_fame([{"g": 3}], source="x", market=OTHER, train_start="2018-01-01T00:00:00Z",
                            train_end="2018-01-02T00:00:00Z")
    assert store.latest_hall_of_fame(market=M) == [{"g": 2}]
    assert store.latest_hall_of_fame(market=M, trained_by="2018-01-19T00:00:00Z") == [{"g": 1}]
    assert store.latest_hall_of_fame(market=M, trained_by="2018-01-20T00:00:00Z") == [{"g": 2}]
    assert store.latest_hall_of_fame(market=M, trained_by="2018-01-11T00:00:00Z") is None
    assert store.latest_hall_of_fame(trained_by="2018-01-11T00:00:00Z") == [{"g": 3}]


def test_knowledge_filtered_by_market_and_data_end(store: Store) -> None:
    base = {"mode": "daily", "created_at": "2025-01-01T00:00:00Z"}
    store.save_knowledge({**base, "cycle_id": "k-old"})  # no window, no market
    store.save_knowledge({**base, "cycle_id": "k15", "market": M, **_w("12", "15"),
                          "data_end": "2018-01-16T00:00:00Z"})
    store.save_knowledge({**base, "cycle_id": "k20", "market": M, **_w("17", "20")})  # data_end = train_end
    store.save_knowledge({**base, "cycle_id": "x15", "market": OTHER, **_w("12", "15")})
    ids = lambda **kw: sorted(r["cycle_id"] for r in store.list_knowledge(**kw))  # noqa: E731
    assert ids() == ["k-old", "k15", "k20", "x15"]
    assert ids(market=M) == ["k15", "k20"]
    # the out-of-sample figures of k15 reach 2018-01-16: not known on the 15th
    assert ids(market=M, trained_by="2018-01-15T00:00:00Z") == []
    assert ids(market=M, trained_by="2018-01-16T00:00:00Z") == ["k15"]
    assert ids(trained_by="2018-01-20T00:00:00Z") == ["k15", "k20", "x15"]
    rec = store.get_knowledge("k20")
    assert rec["data_end"] == rec["train_end"] == "2018-01-20T00:00:00.000000+00:00"


def test_studies_filtered_by_market_and_train_end(store: Store) -> None:
    store.save_trial("s-old", {"params": {"x": 1}, "value": 0.5})  # no meta: never matched
    store.save_trial("s15", {"params": {"x": 1}, "value": 0.1})
    store.save_study_meta("s15", {"market": M, "train_start": "2018-01-12T00:00:00Z",
                                  "train_end": "2018-01-15T00:00:00Z"})
    store.save_study_meta("s20", {"market": M, "train_end": "2018-01-20T00:00:00Z"})
    # the same window written another way is the same meta (a resume is not refused)
    store.save_study_meta("s15", {"market": M, "train_start": "2018-01-12T00:00:00+00:00",
                                  "train_end": "2018-01-15T00:00:00.000000+00:00"})
    names = lambda **kw: sorted(s["study"] for s in store.list_studies(**kw))  # noqa: E731
    assert names() == ["s-old", "s15", "s20"]
    assert names(market=M) == ["s15", "s20"]
    assert names(market=M, trained_by="2018-01-16T00:00:00Z") == ["s15"]
    assert names(market=OTHER) == [] and names(trained_by="2018-01-01T00:00:00Z") == []
    (s15,) = store.list_studies(trained_by="2018-01-16T00:00:00Z")
    assert s15["trials"] == 1 and s15["best_value"] == 0.1


@pytest.mark.parametrize("call", [
    lambda s: s.latest_population(trained_by="2018-01-15"),  # naive: refused
    lambda s: s.latest_hall_of_fame(trained_by="yesterday"),
    lambda s: s.list_knowledge(trained_by=5),
    lambda s: s.list_studies(trained_by="2018-13-01T00:00:00Z"),
    lambda s: s.save_population("p", [{"g": 1}], {"train_start": "2018-01-12T00:00:00Z"}),  # one end only
    lambda s: s.save_population("p", [{"g": 1}], {"train_start": "2018-01-15T00:00:00Z",
                                                  "train_end": "2018-01-12T00:00:00Z"}),  # backwards
    lambda s: s.save_hall_of_fame([{"g": 1}], source="x", train_end="2018-01-12T00:00:00Z"),
    lambda s: s.save_knowledge({"cycle_id": "k", "mode": "daily", **_w("12", "15"),
                                "data_end": "2018-01-14T00:00:00Z"}),  # data ends before training does
])
def test_bad_windows_and_filters_are_refused(store: Store, call) -> None:
    with pytest.raises(InvalidDocument):
        call(store)
    assert store.latest_population() is None and store.latest_hall_of_fame() is None
    assert store.list_knowledge() == []
