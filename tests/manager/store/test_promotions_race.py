"""Two users approving the same step of one promotion at the same time, through
:func:`manager.promotions.approve` on two store objects of one database, on every
adapter: exactly one wins, the other gets StateConflict, one step is logged."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from manager import promotions as P
from tests.helpers import BINANCE
from tests.manager.store.builders import Opener
from tests.promotion_campaign import RELAXED, run

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")


@dataclass(frozen=True)
class User:
    name: str
    role: str


def test_two_concurrent_approvals_one_wins(open_same: Opener) -> None:
    setup = open_same()
    report = run(setup)
    doc = P.propose(setup, User("ada", "admin"), report["campaign_id"], 3, notes="race", config=RELAXED)
    stores = [open_same(), open_same()]
    users = [User("olga", "ops"), User("otto", "ops")]
    barrier = threading.Barrier(2)
    outcome: dict[str, object] = {}

    def go(k: int) -> None:
        barrier.wait()
        try:
            outcome[users[k].name] = P.approve(stores[k], users[k], doc["promotion_id"], "mine",
                                               doc["checklist_hash"])["status"]
        except P.PromotionError as exc:
            outcome[users[k].name] = exc

    threads = [threading.Thread(target=go, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [v for v in outcome.values() if v == "ops_approved"]
    losses = [v for v in outcome.values() if isinstance(v, P.StateConflict)]
    assert len(wins) == 1 and len(losses) == 1, outcome
    final = P.get_promotion(setup, doc["promotion_id"])
    assert final["status"] == "ops_approved" and len(final["steps"]) == 1
    assert [r["status"] for r in final["log"]] == ["proposed", "ops_approved"]
    assert sum(e["kind"] == "promotion.ops_approved" for e in setup.list_audit(50)) == 1
