"""Lineages by similarity to a founder (risk.lineage)."""
from __future__ import annotations

import pytest

from risk.lineage import Lineage, LineageError, assign_lineages, param_distance


def test_tolerance_by_kind():
    f = {"fast": 20, "slow": 100, "k": 2.0, "mode": "close"}
    assert param_distance(f, f) == 0.0
    # ints: max(1, 10 % of the founder's) bars; 22 vs 20 is one allowance of 2 bars
    assert param_distance({**f, "fast": 22}, f) == pytest.approx(1.0)
    assert param_distance({**f, "fast": 23}, f) == pytest.approx(1.5)
    assert param_distance({**f, "slow": 110}, f) == pytest.approx(1.0)
    # floats: 10 % relative
    assert param_distance({**f, "k": 2.2}, f) == pytest.approx(1.0)
    assert param_distance({**f, "k": 2.3}, f) == pytest.approx(1.5)
    # a small int period keeps a 1-bar allowance
    assert param_distance({"n": 4}, {"n": 3}) == pytest.approx(1.0)
    # categorical and parameter names must match
    assert param_distance({**f, "mode": "open"}, f) is None
    assert param_distance({"fast": 20}, f) is None
    with pytest.raises(LineageError, match="tolerance=-1"):
        param_distance(f, f, -1)


def test_assign_joins_nearest_and_founds_the_rest_in_order():
    old = Lineage("aaa", "sma_cross", {"fast": 10, "slow": 50})
    older_twin = Lineage("bbb", "sma_cross", {"fast": 11, "slow": 50})
    genomes = [
        ("g1", "sma_cross", {"fast": 11, "slow": 52}),   # within both; nearer bbb (0 + 0.4) than aaa (1.0)
        ("g2", "sma_cross", {"fast": 30, "slow": 90}),   # founds a new lineage
        ("g3", "sma_cross", {"fast": 31, "slow": 92}),   # joins g2's, founded just before
        ("g4", "rsi", {"fast": 10, "slow": 50}),         # another family: new
        ("g1", "sma_cross", {"fast": 11, "slow": 52}),   # repeated: same answer
    ]
    got, founded = assign_lineages(genomes, [old, older_twin])
    assert got["g1"].founder == "bbb"
    assert got["g2"].founder == "g2" and got["g3"].founder == "g2"
    assert got["g4"].founder == "g4" and got["g4"].family == "rsi"
    assert [x.founder for x in founded] == ["g2", "g4"]
    assert got["g2"].subject == "lineage:g2"
    with pytest.raises(LineageError, match="given twice"):
        assign_lineages([("x", "rsi", {"n": 1}), ("x", "rsi", {"n": 2})], [])


def test_ties_go_to_the_earliest_founded_and_round_trip():
    a, b = Lineage("a", "rsi", {"n": 1}), Lineage("b", "rsi", {"n": 3})
    got, _ = assign_lineages([("g", "rsi", {"n": 2})], [a, b])
    assert got["g"] is a
    assert Lineage.from_dict(a.to_dict()) == a
