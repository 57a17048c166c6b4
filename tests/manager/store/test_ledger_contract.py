"""Contract of the ledger journal (part of :class:`manager.store.ports.runs.RunStore`)
on every adapter: idempotent, atomic appends, exact decimal strings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manager.store import InvalidDocument, RunStateError, Store, StoreError
from tests.manager.store.builders import T0, make_results, make_run, make_txn


def test_ledger_postings_are_normalised(store: Store) -> None:
    run_id = store.create_run(make_run())
    txn = {
        "txn_id": "dep-1",
        "seq": 0,
        "bar": 0,
        "time": "2025-03-01T09:30:00Z",
        "kind": "deposit",
        "postings": [
            {"account": "parent:cash", "amount": "100"},
            {"account": "equity:capital", "amount": "-100"},
        ],
        "source": "bankroll",
    }
    assert store.append_ledger(run_id, [txn]) == 1
    (got,) = store.get_ledger(run_id)
    assert got["memo"] == ""
    assert got["source"] == "bankroll"
    assert got["time"] == "2025-03-01T09:30:00Z"
    assert got["postings"] == [
        {"account": "parent:cash", "amount": "100", "qty": None, "symbol": None},
        {"account": "equity:capital", "amount": "-100", "qty": None, "symbol": None},
    ]


# -- append_ledger ----------------------------------------------------------------


def test_append_ledger_is_idempotent(store: Store) -> None:
    run_id = store.create_run(make_run())
    batch = [make_txn(0), make_txn(1), make_txn(2)]
    assert store.append_ledger(run_id, batch) == 3
    assert store.append_ledger(run_id, batch) == 0
    assert store.append_ledger(run_id, [make_txn(2), make_txn(3), make_txn(4)]) == 2
    assert store.append_ledger(run_id, []) == 0
    ledger = store.get_ledger(run_id)
    assert [t["txn_id"] for t in ledger] == ["t00000", "t00001", "t00002", "t00003", "t00004"]
    assert ledger[0] == batch[0]


def test_append_ledger_orders_by_seq_not_arrival(store: Store) -> None:
    run_id = store.create_run(make_run())
    store.append_ledger(run_id, [make_txn(10), make_txn(3)])
    store.append_ledger(run_id, [make_txn(7)])
    assert [t["seq"] for t in store.get_ledger(run_id)] == [3, 7, 10]


def test_append_ledger_batches_are_atomic(store: Store) -> None:
    run_id = store.create_run(make_run())
    store.append_ledger(run_id, [make_txn(0)])
    conflicting = make_txn(0, amount="99")
    with pytest.raises(StoreError, match="'t00000' is already stored .* different content"):
        store.append_ledger(run_id, [make_txn(1), make_txn(2), conflicting])
    with pytest.raises(StoreError, match="seq 0 is already used"):
        store.append_ledger(run_id, [make_txn(1), make_txn(0, txn_id="x0")])
    with pytest.raises(InvalidDocument, match="appears twice"):
        store.append_ledger(run_id, [make_txn(1), make_txn(1)])
    assert [t["txn_id"] for t in store.get_ledger(run_id)] == ["t00000"]


def test_append_ledger_on_completed_run(store: Store) -> None:
    run_id = store.create_run(make_run())
    results = make_results()
    store.complete_run(run_id, **results)
    assert store.append_ledger(run_id, results["ledger"]) == 0  # a retried task
    with pytest.raises(RunStateError, match="completed"):
        store.append_ledger(run_id, [make_txn(50)])
    assert len(store.get_ledger(run_id)) == 3


def _txn_with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    txn = make_txn(0)
    target: Any = txn
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return txn


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("txn_id",), KeyError, "txn_id must be a non-empty str"),
        (("txn_id",), 7, "txn_id must be a non-empty str"),
        (("seq",), "0", "seq must be an int"),
        (("seq",), True, "seq must be an int"),
        (("bar",), 1.0, "bar must be an int"),
        (("time",), "noon", "not an ISO 8601"),
        (("kind",), "", "kind must be a non-empty str"),
        (("postings",), [], "no postings"),
        (("postings",), KeyError, "postings must be a list"),
        (("postings", 0, "amount"), Decimal("-10"), "must be a decimal string"),
        (("postings", 0, "amount"), "NaN", "not a finite decimal"),
        (("postings", 0, "amount"), " -10.00000000", "not a finite decimal"),
        (("postings", 0, "amount"), "1_000", "not a finite decimal"),
        (("postings", 1, "qty"), 0.5, "floats are not exact"),
        (("postings", 1, "price"), "1", r"unknown keys \['price'\]"),
        (("postings", 1, "account"), None, "account must be a non-empty str"),
        (("postings", 1, "symbol"), "", "symbol must be a non-empty str"),
        (("extra",), {"when": datetime(2025, 1, 1)}, r"extra\.when: datetime"),
    ],
)
def test_append_ledger_refuses_bad_transactions(
    store: Store, path: tuple[Any, ...], value: Any, message: str
) -> None:
    run_id = store.create_run(make_run())
    with pytest.raises(InvalidDocument, match=message):
        store.append_ledger(run_id, [make_txn(5), _txn_with(path, value)])
    assert store.get_ledger(run_id) == []


decimal_strings = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=-(10**15), max_value=10**15, places=8
).map(str)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amounts=st.lists(decimal_strings, min_size=1, max_size=5), style=st.sampled_from(["str", "e"]))
def test_ledger_amounts_round_trip_exactly(store: Store, amounts: list[str], style: str) -> None:
    balance = -sum((Decimal(a) for a in amounts), Decimal(0))
    closing = str(balance) if style == "str" else f"{balance:E}"
    postings = [{"account": f"acct:{i}", "amount": a} for i, a in enumerate(amounts)]
    postings.append({"account": "parent:cash", "amount": closing})
    run_id = store.create_run(make_run())
    txn = {"txn_id": "t", "seq": 0, "bar": 0, "time": T0.isoformat(), "kind": "k", "postings": postings}
    store.append_ledger(run_id, [txn])
    (got,) = store.get_ledger(run_id)
    assert [p["amount"] for p in got["postings"]] == [*amounts, closing]
    assert sum(Decimal(p["amount"]) for p in got["postings"]) == 0


