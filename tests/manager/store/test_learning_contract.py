"""Contract of the learning port (:class:`manager.store.ports.learning.LearningStore`)
on every adapter: the hall of fame, populations and the knowledge base (search
trials and study settings: ``test_search_contract.py``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from manager.store import InvalidDocument, NotFound, Store, StoreError
from tests.manager.store.builders import (
    T0,
    Opener,
    knowledge_at,
    knowledge_pages,
    make_genomes,
    make_knowledge,
)


# -- hall of fame -------------------------------------------------------------------


def test_hall_of_fame_latest_version_wins(open_same: Opener) -> None:
    store = open_same()
    assert store.latest_hall_of_fame() is None
    v1 = [{"family": "sma_cross", "params": {"fast": 5}, "fitness": 1.2}]
    v2 = [{"family": "rsi_revert", "params": {"period": 14}, "fitness": 2.0}, v1[0]]
    store.save_hall_of_fame(v1, source="run:day1")
    assert store.latest_hall_of_fame() == v1
    store.save_hall_of_fame(v2, source="run:day2")
    assert store.latest_hall_of_fame() == v2
    v2[0]["fitness"] = 0  # the store keeps its own copy
    store.close()
    assert open_same().latest_hall_of_fame()[0]["fitness"] == 2.0


def test_hall_of_fame_refuses_bad_input(store: Store) -> None:
    with pytest.raises(InvalidDocument, match="entries must be a list"):
        store.save_hall_of_fame({"family": "x"}, source="s")  # type: ignore[arg-type]
    with pytest.raises(InvalidDocument, match=r"entries\[1\] must be a dict"):
        store.save_hall_of_fame([{"family": "x"}, "y"], source="s")
    with pytest.raises(InvalidDocument, match="source must be a non-empty str"):
        store.save_hall_of_fame([{"family": "x"}], source="")
    assert store.latest_hall_of_fame() is None


def test_hall_of_fame_filtered_by_market(open_same: Opener) -> None:
    """Seeding never crosses markets: the latest version *of a market* is found,
    and a version saved without a market (unknown) matches no market filter."""
    store = open_same()
    btc = [{"family": "sma_cross", "params": {"fast": 5}}]
    usd = [{"family": "rsi_reversion", "params": {"period": 9}}]
    store.save_hall_of_fame([{"family": "legacy"}], source="old")
    assert store.latest_hall_of_fame(market="binance-5m|5m|BTC") is None
    store.save_hall_of_fame(btc, source="c1", market="binance-5m|5m|BTC")
    store.save_hall_of_fame(usd, source="c2", market="coinbase-1m|1m|USD")
    assert store.latest_hall_of_fame(market="binance-5m|5m|BTC") == btc
    assert store.latest_hall_of_fame(market="coinbase-1m|1m|USD") == usd
    assert store.latest_hall_of_fame() == usd
    assert store.latest_hall_of_fame(market="SYNTHETIC|5m|USD") is None
    store.close()
    assert open_same().latest_hall_of_fame(market="binance-5m|5m|BTC") == btc
    with pytest.raises(InvalidDocument):
        open_same().latest_hall_of_fame(market="")


def test_latest_population_filtered_by_market_and_mode(store: Store) -> None:
    g = [{"family": "sma_cross", "params": {}}]
    store.save_population("p-btc-daily", g, {"mode": "daily", "market": "binance-5m|5m|BTC"})
    store.save_population("p-usd-daily", g, {"mode": "daily", "market": "coinbase-1m|1m|USD"})
    store.save_population("p-btc-intra", g, {"mode": "intraday", "market": "binance-5m|5m|BTC"})
    store.save_population("p-none", g, {"mode": "daily"})
    assert store.latest_population(market="binance-5m|5m|BTC")["cycle_id"] == "p-btc-intra"
    assert store.latest_population("daily", market="binance-5m|5m|BTC")["cycle_id"] == "p-btc-daily"
    assert store.latest_population("daily", market="coinbase-1m|1m|USD")["cycle_id"] == "p-usd-daily"
    assert store.latest_population("intraday", market="coinbase-1m|1m|USD") is None
    assert store.latest_population("daily")["cycle_id"] == "p-none"
    with pytest.raises(InvalidDocument):
        store.save_population("p-bad", g, {"mode": "daily", "market": 5})


# -- learning: populations -------------------------------------------------------------


def test_population_round_trip(open_same: Opener) -> None:
    store = open_same()
    genomes = make_genomes(tag="c1-")
    meta = {"mode": "daily", "generation": 4, "seed": np.int64(7), "fitness": (1.5, 0.25)}
    before = datetime.now(timezone.utc)
    assert store.save_population("cycle-1", genomes, meta) is None
    got = store.get_population("cycle-1")
    assert list(got) == ["cycle_id", "saved_at", "genomes", "meta"]
    assert got["cycle_id"] == "cycle-1"
    assert got["genomes"] == genomes
    assert got["meta"] == {"mode": "daily", "generation": 4, "seed": 7, "fitness": [1.5, 0.25]}
    saved = datetime.fromisoformat(got["saved_at"])
    assert saved.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= saved <= datetime.now(timezone.utc)
    genomes[0]["leverage"] = 9.0  # the store keeps its own copy
    got["genomes"][1]["leverage"] = 8.0
    store.close()
    again = open_same()
    assert again.get_population("cycle-1")["genomes"] == make_genomes(tag="c1-")
    assert again.latest_population() == again.get_population("cycle-1")


def test_latest_population_is_the_last_saved_optionally_by_mode(store: Store) -> None:
    assert store.latest_population() is None
    assert store.latest_population(mode="daily") is None
    # Cycle ids deliberately not in save order: "latest" means last saved.
    saves = [("c-9", "daily"), ("c-1", "intraday"), ("c-5", "daily"), ("c-3", None), ("c-2", "intraday")]
    for cycle_id, mode in saves:
        meta = {"generation": 1} if mode is None else {"mode": mode, "generation": 1}
        store.save_population(cycle_id, make_genomes(1, tag=cycle_id), meta)
    assert store.latest_population()["cycle_id"] == "c-2"
    assert store.latest_population(mode="daily")["cycle_id"] == "c-5"
    assert store.latest_population(mode="intraday")["cycle_id"] == "c-2"
    assert store.latest_population(mode="weekly") is None
    assert store.latest_population(mode="daily")["meta"] == {"mode": "daily", "generation": 1}
    store.save_population("c-0", make_genomes(1), {"mode": None})
    assert store.latest_population()["cycle_id"] == "c-0"
    assert store.latest_population(mode="daily")["cycle_id"] == "c-5"


def test_latest_population_follows_save_order_in_quick_succession(open_same: Opener) -> None:
    one, two = open_same(), open_same()
    for i in range(30):  # saves may share a timestamp; save order still decides
        (one if i % 2 else two).save_population(f"q{i:02d}", make_genomes(1), {"mode": "intraday"})
        assert one.latest_population()["cycle_id"] == f"q{i:02d}"
        assert two.latest_population(mode="intraday")["cycle_id"] == f"q{i:02d}"


def test_duplicate_population_is_refused_and_original_kept(store: Store) -> None:
    store.save_population("cycle-1", make_genomes(2), {"mode": "daily"})
    with pytest.raises(StoreError, match="'cycle-1' already exists"):
        store.save_population("cycle-1", make_genomes(5), {"mode": "intraday"})
    got = store.get_population("cycle-1")
    assert len(got["genomes"]) == 2 and got["meta"] == {"mode": "daily"}
    assert store.latest_population(mode="intraday") is None


def test_unknown_population_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="no population with cycle_id 'missing'"):
        store.get_population("missing")
    with pytest.raises(InvalidDocument, match="not valid"):
        store.get_population("no spaces")


@pytest.mark.parametrize(
    ("cycle_id", "genomes", "meta", "message"),
    [
        ("bad id", [{"g": 1}], {}, "population cycle_id 'bad id' is not valid"),
        (None, [{"g": 1}], {}, "population cycle_id None is not valid"),
        ("c", {"g": 1}, {}, "population genomes must be a list"),
        ("c", [], {}, "has no genomes"),
        ("c", [{"g": 1}, "sma"], {}, r"population genomes\[1\] must be a dict"),
        ("c", [{"g": Decimal("1.5")}], {}, r"population\.genomes\[0\]\.g: Decimal"),
        ("c", [{"g": float("inf")}], {}, "use None"),
        ("c", [{"g": 1}], ["daily"], "population meta must be a dict"),
        ("c", [{"g": 1}], {"mode": 3}, "population meta mode must be a non-empty str"),
        ("c", [{"g": 1}], {"mode": ""}, "population meta mode must be a non-empty str"),
        ("c", [{"g": 1}], {"at": datetime(2025, 1, 1)}, r"population\.meta\.at: datetime"),
        ("c", [{"g": 1}], {2: "x"}, "not a str"),
    ],
)
def test_save_population_refuses_bad_input(
    store: Store, cycle_id: Any, genomes: Any, meta: Any, message: str
) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.save_population(cycle_id, genomes, meta)
    assert store.latest_population() is None


@pytest.mark.parametrize("mode", ["", 3, ["daily"]])
def test_latest_population_refuses_bad_mode(store: Store, mode: Any) -> None:
    with pytest.raises(InvalidDocument, match="mode must be a non-empty str"):
        store.latest_population(mode=mode)


# -- learning: knowledge base -------------------------------------------------------------


def test_knowledge_round_trip_and_defaults(open_same: Opener) -> None:
    store = open_same()
    record = make_knowledge("k1", notes=("walk-forward", 3), windows=np.int32(4))
    before = datetime.now(timezone.utc)
    assert store.save_knowledge(record) == "k1"
    got = store.get_knowledge("k1")
    assert list(got)[:3] == ["cycle_id", "mode", "created_at"]
    created = datetime.fromisoformat(got["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= created <= datetime.now(timezone.utc)
    want = {**record, "created_at": got["created_at"], "notes": ["walk-forward", 3], "windows": 4}
    assert got == want
    record["winner"]["params"]["fast"] = 99  # the store keeps its own copy
    store.close()
    assert open_same().get_knowledge("k1")["winner"]["params"]["fast"] == 5


def test_knowledge_created_at_is_normalised(store: Store) -> None:
    store.save_knowledge(make_knowledge("k2", created_at="2025-03-01T11:30:00+02:00"))
    assert store.get_knowledge("k2")["created_at"] == "2025-03-01T09:30:00.000000+00:00"
    store.save_knowledge(make_knowledge("k3", created_at=T0))
    assert store.get_knowledge("k3")["created_at"] == "2025-03-01T09:30:00.000000+00:00"


def _knowledge_order(store: Store, **filters: Any) -> list[str]:
    return [r["cycle_id"] for r in store.list_knowledge(limit=1000, **filters)]


def test_list_knowledge_newest_first_with_pagination_and_ties(store: Store) -> None:
    assert store.list_knowledge() == []
    expected: list[tuple[str, str]] = []
    for i in range(17):
        when = T0 + timedelta(hours=i // 3)  # groups of three share created_at
        cycle_id = f"cy{(i * 5) % 17:02d}"
        knowledge_at(store, cycle_id, when)
        expected.append((when.isoformat(), cycle_id))
    want = [cycle_id for _, cycle_id in sorted(expected, reverse=True)]
    assert _knowledge_order(store) == want
    assert [r["cycle_id"] for r in store.list_knowledge(limit=4)] == want[:4]
    pages = knowledge_pages(store, limit=4)
    assert [len(p) for p in pages] == [4, 4, 4, 4, 1]
    assert [c for page in pages for c in page] == want
    assert len(store.list_knowledge()) == 17  # default limit 50


def test_list_knowledge_pages_do_not_shift_when_new_records_arrive(store: Store) -> None:
    for i in range(6):
        knowledge_at(store, f"old-{i}", T0 + timedelta(days=i))
    first = [r["cycle_id"] for r in store.list_knowledge(limit=3)]
    assert first == ["old-5", "old-4", "old-3"]
    for i in range(3):
        knowledge_at(store, f"new-{i}", T0 + timedelta(days=30 + i))
    second = [r["cycle_id"] for r in store.list_knowledge(limit=3, before=first[-1])]
    assert second == ["old-2", "old-1", "old-0"]
    assert store.list_knowledge(limit=3, before="old-0") == []


def test_list_knowledge_by_mode_with_pagination(store: Store) -> None:
    for i in range(10):
        knowledge_at(store, f"m{i:02d}", T0 + timedelta(days=i), mode="intraday" if i % 3 == 0 else "daily")
    assert _knowledge_order(store, mode="intraday") == ["m09", "m06", "m03", "m00"]
    daily = _knowledge_order(store, mode="daily")
    assert daily == ["m08", "m07", "m05", "m04", "m02", "m01"]
    assert [c for page in knowledge_pages(store, limit=4, mode="daily") for c in page] == daily
    assert all(r["mode"] == "daily" for r in store.list_knowledge(mode="daily"))
    # The cursor need not match the filter: it is a position in the listing order.
    assert _knowledge_order(store, before="m06", mode="daily") == ["m05", "m04", "m02", "m01"]
    assert store.list_knowledge(mode="weekly") == []


def test_duplicate_knowledge_is_refused_and_original_kept(store: Store) -> None:
    store.save_knowledge(make_knowledge("k1", in_sample={"sharpe": 1.0}))
    with pytest.raises(StoreError, match="'k1' already exists"):
        store.save_knowledge(make_knowledge("k1", mode="intraday", in_sample={"sharpe": 2.0}))
    got = store.get_knowledge("k1")
    assert got["mode"] == "daily" and got["in_sample"] == {"sharpe": 1.0}
    assert len(store.list_knowledge()) == 1


def test_unknown_knowledge_raises_not_found(store: Store) -> None:
    knowledge_at(store, "exists", T0)
    with pytest.raises(NotFound, match="no knowledge record with cycle_id 'missing'"):
        store.get_knowledge("missing")
    with pytest.raises(NotFound, match="before='missing' names no knowledge record"):
        store.list_knowledge(before="missing")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ("k1", "knowledge record must be a dict"),
        ({"mode": "daily"}, r"missing \['cycle_id'\]"),
        ({"cycle_id": "k1"}, r"missing \['mode'\]"),
        ({"cycle_id": "k 1", "mode": "daily"}, "knowledge cycle_id 'k 1' is not valid"),
        ({"cycle_id": "k1", "mode": ""}, "knowledge mode must be a non-empty str"),
        ({"cycle_id": "k1", "mode": None}, "knowledge mode must be a non-empty str"),
        ({"cycle_id": "k1", "mode": "daily", "created_at": "2025-03-01"}, "no UTC offset"),
        ({"cycle_id": "k1", "mode": "daily", "created_at": 17}, "must be an ISO 8601 string"),
        ({"cycle_id": "k1", "mode": "daily", "oos": {"sharpe": float("nan")}}, r"knowledge\.oos\.sharpe: float nan"),
        ({"cycle_id": "k1", "mode": "daily", "tried": {"x", "y"}}, r"knowledge\.tried: set"),
        ({"cycle_id": "k1", "mode": "daily", "pnl": Decimal("1.2")}, r"knowledge\.pnl: Decimal"),
        ({"cycle_id": "k1", "mode": "daily", 5: "x"}, "key 5 is not a str"),
    ],
)
def test_save_knowledge_refuses_bad_records(store: Store, record: Any, message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.save_knowledge(record)
    assert store.list_knowledge() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "out of range"),
        ({"limit": 1001}, "out of range"),
        ({"limit": 2.0}, "must be an int"),
        ({"mode": ""}, "mode must be a non-empty str"),
        ({"mode": 1}, "mode must be a non-empty str"),
        ({"before": "bad id"}, "not valid"),
    ],
)
def test_list_knowledge_refuses_bad_arguments(store: Store, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.list_knowledge(**kwargs)


