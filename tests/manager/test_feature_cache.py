"""The feature cache: in process and against the real Redis on this machine (db 11).

Redis tests use their own key prefix in db 11 and delete only keys under it
(plus the default prefix in db 11, which the runner tests write through
``COHORTLAB_REDIS_URL``), before and after.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import redis

import manager.cache as mcache
from evolution.toolbox import random_genomes
from manager.baselines import cohort_baselines
from manager.cache import (
    DEFAULT_PREFIX,
    RedisFeatureCache,
    decode_array,
    encode_array,
    feature_cache_from_settings,
    invalidate_venue,
)
from manager.report import cohort_report
from manager.runner import BarsRequest, CohortRequest, download_bars, load_bars
from manager.launch import execute_cohort
from simulator import indicators as ind
from simulator.cohort import simulate_cohort
from simulator.data import load_market
from simulator.download import write_ohlcv
from simulator.features import (
    FeatureKey,
    InProcessCache,
    NullCache,
    cached_indicator,
    cached_indicator_many,
    current_cache,
    feature_key,
    market_window,
    use_cache,
)
from simulator.strategies.registry import get_strategy
from simulator.synthetic import synthetic_market

REDIS_URL = "redis://127.0.0.1:6379/11"
from tests.helpers import BINANCE  # noqa: E402
FAMILIES = ("sma_cross", "ema_macd", "rsi_reversion", "bollinger_reversion", "donchian_breakout",
            "vwap_deviation")


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not _redis_up(), reason=f"no Redis at {REDIS_URL}")


def _wipe(client: redis.Redis, prefix: str) -> None:
    names = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if names:
        client.delete(*names)


def _keys(client: redis.Redis, prefix: str, kind: str = "d") -> list[bytes]:
    return list(client.scan_iter(match=f"{prefix}:{kind}:*", count=1000))


@pytest.fixture
def rcache():
    prefix = f"cohortlab-test:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    cache = RedisFeatureCache(REDIS_URL, prefix=prefix, ttl_s=600)
    _wipe(cache.client, prefix)
    yield cache
    _wipe(cache.client, prefix)


@pytest.fixture(params=["in_process", pytest.param("redis", marks=needs_redis)])
def cache(request):
    if request.param == "in_process":
        yield InProcessCache()
    else:
        yield request.getfixturevalue("rcache")


@pytest.fixture
def runner_redis(monkeypatch):
    """COHORTLAB_REDIS_URL pointing at db 11; the default prefix there is wiped."""
    monkeypatch.setenv("COHORTLAB_REDIS_URL", REDIS_URL)
    monkeypatch.setattr(mcache, "_redis_caches", {})  # a fresh client for this test
    client = redis.Redis.from_url(REDIS_URL)
    _wipe(client, DEFAULT_PREFIX)
    yield client
    _wipe(client, DEFAULT_PREFIX)


@pytest.fixture(scope="module")
def market():
    return synthetic_market(bars=500, warmup_bars=100, seed=3)


def _param_sets(family: str, n: int, seed: int) -> list[dict]:
    """n valid parameter sets (with repeats) spread over the family's bounds."""
    strat = get_strategy(family)
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(n):
        raw = {}
        for p in strat.params:
            if p.kind == "categorical":
                raw[p.name] = p.choices[rng.integers(len(p.choices))]
            else:
                hi = min(p.high, p.low + 120) if p.kind == "int" else p.high
                raw[p.name] = rng.uniform(p.low, hi)
        sets.append(strat.repair(raw))
    return sets + sets[:2]


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def _same_bits(a, b) -> bool:
    return a.shape == b.shape and np.array_equal(_bits(a), _bits(b))


# ----------------------------------------------------------------------------
# keys
# ----------------------------------------------------------------------------


def test_feature_key_parts_and_window():
    k = feature_key("/data/binance-5m", "5m", "ETH_BTC", (1, 2, 3), "sma@close", {"window": np.int64(20)})
    assert k == FeatureKey("/data/binance-5m", "5m", "ETH_BTC", (1, 2, 3), "sma@close", (("window", 20),))
    assert feature_key("v", "5m", "X", (1, 2, 3), "i", {"b": 1, "a": 2.5}).params == (("a", 2.5), ("b", 1))
    base = dict(venue="v", timeframe="5m", symbol="X", window=(1, 2, 3), indicator="sma@close",
                params={"window": 20}, data="d")
    ref = feature_key(**base)
    for part, other in [("venue", "w"), ("timeframe", "1m"), ("symbol", "Y"), ("window", (1, 2, 4)),
                        ("window", (0, 2, 3)), ("indicator", "rsi@close"), ("params", {"window": 21}),
                        ("data", "e")]:
        changed = feature_key(**{**base, part: other})
        assert changed != ref and changed.text != ref.text, part
    with pytest.raises(ValueError, match="window"):
        feature_key("v", "5m", "X", (1, 2), "i", {})
    with pytest.raises(TypeError):
        feature_key("v", "5m", "X", (1, 2, 3), "i", {"w": [1, 2]})


def test_market_window(market):
    first, last, n = market_window(market)
    assert n == market.n_bars == 600
    assert first == market.timestamps[0].astype("datetime64[ns]").astype(np.int64)
    assert last - first == (n - 1) * 300 * 10**9
    assert market_window(market.head(0)) == (0, 0, 0)


def test_default_cache_is_null_and_use_cache_restores():
    assert isinstance(current_cache(), NullCache)
    c = InProcessCache()
    with use_cache(c):
        assert current_cache() is c
        with use_cache(None):
            assert isinstance(current_cache(), NullCache)
        assert current_cache() is c
    assert isinstance(current_cache(), NullCache)


def test_array_encoding_round_trip():
    a = np.linspace(0, 1, 7)
    a[3] = np.nan
    b = decode_array(encode_array(a))
    assert _same_bits(a, b) and b.dtype == np.float64
    with pytest.raises(ValueError):
        decode_array(b"something else")
    with pytest.raises(ValueError):
        decode_array(encode_array(a)[:-8])


# ----------------------------------------------------------------------------
# hits, misses, identical arrays
# ----------------------------------------------------------------------------


def test_miss_then_hit(cache, market):
    strat = get_strategy("sma_cross")
    sets = [{"fast": 5, "slow": 20}, {"fast": 10, "slow": 20}]  # windows 5, 10, 20
    ref = strat.targets(market, sets)
    n = 3 * len(market.symbols)
    with use_cache(cache):
        first = strat.targets(market, sets)
        assert cache.stats()["hits"] == 0 and cache.stats()["misses"] == n
        second = strat.targets(market, sets)
        assert cache.stats()["hits"] == n and cache.stats()["misses"] == n
    assert np.array_equal(first, ref) and np.array_equal(second, ref)
    if isinstance(cache, RedisFeatureCache):
        assert len(_keys(cache.client, cache.prefix)) == n
        assert cache.stats()["puts"] == n and cache.stats()["errors"] == 0


def test_all_six_families_identical(cache, market):
    """Targets with a cold and a warm cache equal the uncached ones, and every
    cached indicator array equals the indicator kernel's, bit for bit."""
    for i, family in enumerate(FAMILIES):
        strat = get_strategy(family)
        sets = _param_sets(family, 8, seed=i)
        ref = strat.targets(market, sets)
        with use_cache(cache):
            before = cache.stats()["hits"]
            cold = strat.targets(market, sets)
            warm = strat.targets(market, sets)
            assert cache.stats()["hits"] > before, family
        assert np.array_equal(cold, ref) and np.array_equal(warm, ref), family

    close, high, low, vol = market.close, market.high, market.low, market.volume

    def from_cache(name, field, params):
        def fail(idx, dst):
            raise AssertionError(f"{name} {params} was not cached")
        with use_cache(cache):
            return cached_indicator_many(market, name, params, field, fail)

    sma_w = np.unique([v for p in _param_sets("sma_cross", 8, 0) for v in (p["fast"], p["slow"])])
    assert _same_bits(from_cache("sma", "close", {"window": sma_w}), ind.sma_many(close, sma_w))
    m = np.array([[p["fast"], p["slow"], p["signal"]] for p in _param_sets("ema_macd", 8, 1)])
    assert _same_bits(from_cache("macd_hist", "close", {"fast": m[:, 0], "slow": m[:, 1], "signal": m[:, 2]}),
                      ind.macd_many(close, m[:, 0], m[:, 1], m[:, 2])[2])
    per = np.array([p["period"] for p in _param_sets("rsi_reversion", 8, 2)])
    assert _same_bits(from_cache("rsi", "close", {"period": per}), ind.rsi_many(close, per))
    bw = np.array([p["window"] for p in _param_sets("bollinger_reversion", 8, 3)])
    assert _same_bits(from_cache("rolling_std", "close", {"window": bw}), ind.rolling_std_many(close, bw))
    assert _same_bits(from_cache("sma", "close", {"window": bw}), ind.sma_many(close, bw))
    vw = np.array([p["window"] for p in _param_sets("vwap_deviation", 8, 5)])
    assert _same_bits(from_cache("vwap", ("high", "low", "close", "volume"), {"window": vw}),
                      ind.vwap_many(high, low, close, vol, vw))
    # Donchian: sparse-table level j = max over 2**j bars, i.e. rolling_max(2**j) once full
    table = from_cache("range_max_table", "high", {"level": [0, 1, 2], "sign": [1.0] * 3})
    for j in range(3):
        n = 2**j
        assert _same_bits(table[j][n - 1:], ind.rolling_max(high, n)[n - 1:])
    neg = from_cache("range_max_table", "low", {"level": [3], "sign": [-1.0]})[0]
    assert _same_bits(-neg[7:], ind.rolling_min(low, 8)[7:])


def test_other_symbols_and_partial_hits_reuse_exact_arrays(cache, market):
    """Arrays cached from a market of 3 symbols serve a market of 2 of them (in
    another order), and a
    batch where some configurations hit and some miss is still exact."""
    strat = get_strategy("bollinger_reversion")
    with use_cache(cache):
        strat.targets(market, [{"window": 20, "k": 2.0}, {"window": 50, "k": 1.5}])
    sub = market.select(list(market.symbols[2::-2]))
    sets = [{"window": 50, "k": 1.0}, {"window": 33, "k": 2.5}, {"window": 20, "k": 2.0}]
    ref = strat.targets(sub, sets)
    with use_cache(cache):
        h0, m0 = cache.stats()["hits"], cache.stats()["misses"]
        got = strat.targets(sub, sets)
        # sma and std of windows 20 and 50 hit for both symbols; window 33 misses
        assert cache.stats()["hits"] - h0 == 2 * 2 * 2
        assert cache.stats()["misses"] - m0 == 2 * 2
    assert np.array_equal(got, ref)
    close = sub.close
    with use_cache(cache):
        sd = cached_indicator(sub, "rolling_std", {"window": 33}, "close",
                              lambda: pytest.fail("window 33 should be cached now"))
    assert _same_bits(sd, ind.rolling_std(close, 33))


def test_donchian_reuses_lower_levels_of_a_smaller_table(cache, market):
    strat = get_strategy("donchian_breakout")
    small, large = [{"entry": 10, "exit": 5}], [{"entry": 100, "exit": 7}, {"entry": 3, "exit": 2}]
    ref = strat.targets(market, large)
    with use_cache(cache):
        assert np.array_equal(strat.targets(market, small), strat.targets(market, small))
        h0 = cache.stats()["hits"]
        got = strat.targets(market, large)
    # levels 0..3 of the high and low tables hit; 4..6 were computed
    assert cache.stats()["hits"] - h0 == 2 * 4 * len(market.symbols)
    assert np.array_equal(got, ref)


def test_sma_shared_between_families(cache, market):
    with use_cache(cache):
        get_strategy("sma_cross").targets(market, [{"fast": 10, "slow": 20}])
        h0 = cache.stats()["hits"]
        get_strategy("bollinger_reversion").targets(market, [{"window": 20, "k": 2.0}])
        assert cache.stats()["hits"] - h0 == len(market.symbols)  # the SMA(20) middle band


def test_different_window_params_timeframe_or_bars_miss(cache, market):
    strat = get_strategy("rsi_reversion")
    sets = [{"period": 14}]
    s = len(market.symbols)
    variants = {
        "window": market.between("2024-01-01T01:00", "2024-01-02", warmup_bars=20),
        "head": market.head(400),
        "timeframe": replace(market, timeframe_s=60),
        "seed": synthetic_market(bars=500, warmup_bars=100, seed=4),
        "symbols": synthetic_market(symbols=market.symbols[:2], bars=500, warmup_bars=100, seed=3),
        "venue": replace(market, source="/somewhere/else"),
    }
    with use_cache(cache):
        strat.targets(market, sets)
        m = cache.stats()["misses"]
        strat.targets(market, [{"period": 15}])
        assert cache.stats()["misses"] - m == s, "params"
        for name, other in variants.items():
            m = cache.stats()["misses"]
            got = strat.targets(other, sets)
            assert cache.stats()["misses"] - m == len(other.symbols), name
            with use_cache(None):
                assert np.array_equal(got, strat.targets(other, sets)), name
        m, h = cache.stats()["misses"], cache.stats()["hits"]
        strat.targets(market, sets)
        assert cache.stats()["misses"] == m and cache.stats()["hits"] - h == s


# ----------------------------------------------------------------------------
# invalidation, TTL, LRU
# ----------------------------------------------------------------------------


def _fill(cache, venues, symbols, n_params=3):
    keys = [feature_key(v, "5m", s, (0, 10, 11), "sma@close", {"window": w})
            for v in venues for s in symbols for w in range(2, 2 + n_params)]
    cache.put_many((k, np.full(11, float(i))) for i, k in enumerate(keys))
    return keys


def test_invalidate_by_venue_and_symbol(cache):
    keys = _fill(cache, ["A", "B"], ["X", "Y", "Z"])
    present = lambda: {k for k, a in zip(keys, cache.get_many(keys)) if a is not None}  # noqa: E731
    assert len(present()) == 18
    assert cache.invalidate(venue="A", symbol="X") == 3
    assert {(k.venue, k.symbol) for k in keys} - {(k.venue, k.symbol) for k in present()} == {("A", "X")}
    assert cache.invalidate(symbol="Y") == 6  # Y in both venues
    assert cache.invalidate(venue="B") == 6  # B's X and Z
    assert {(k.venue, k.symbol) for k in present()} == {("A", "Z")}
    assert cache.invalidate(venue="B") == 0
    assert cache.invalidate(venue="nowhere", symbol="X") == 0
    assert cache.invalidate() == 3
    assert present() == set()
    # values read back are the ones stored
    _fill(cache, ["A"], ["X"])
    assert [float(a[0]) for a in cache.get_many(keys[:3])] == [0.0, 1.0, 2.0]
    if isinstance(cache, RedisFeatureCache):
        assert cache.invalidate() == 3
        assert _keys(cache.client, cache.prefix) == [] and _keys(cache.client, cache.prefix, "i") == []


@needs_redis
def test_redis_ttl(rcache):
    short = RedisFeatureCache(REDIS_URL, prefix=rcache.prefix, ttl_s=1)
    key = feature_key("A", "5m", "X", (0, 1, 2), "sma@close", {"window": 2})
    short.put_many([(key, np.arange(2.0))])
    ttl_ms = short.client.pttl(short.data_key(key))
    assert 0 < ttl_ms <= 1000
    assert short.get_many([key])[0] is not None
    time.sleep(1.3)
    assert short.get_many([key]) == [None]
    assert short.stats()["hits"] == 1 and short.stats()["misses"] == 1
    none = RedisFeatureCache(REDIS_URL, prefix=rcache.prefix, ttl_s=None)
    none.put_many([(key, np.arange(2.0))])
    assert none.client.pttl(none.data_key(key)) == -1  # no expiry
    with pytest.raises(ValueError):
        RedisFeatureCache(REDIS_URL, ttl_s=0)


def test_redis_unreachable_degrades_to_misses():
    dead = RedisFeatureCache("redis://127.0.0.1:1/0", retry_after_s=60)
    key = feature_key("A", "5m", "X", (0, 1, 2), "sma@close", {"window": 2})
    dead.put_many([(key, np.arange(2.0))])
    assert dead.get_many([key]) == [None]
    assert dead.stats()["errors"] == 1  # then Redis is left alone for retry_after_s
    market = synthetic_market(bars=50, seed=1)
    strat = get_strategy("sma_cross")
    with use_cache(dead):
        got = strat.targets(market, [{"fast": 3, "slow": 9}])
    assert np.array_equal(got, strat.targets(market, [{"fast": 3, "slow": 9}]))
    assert invalidate_venue("SYNTHETIC", dead) == 0


def test_in_process_lru_bound():
    t = 100
    one = t * 8
    c = InProcessCache(max_bytes=3 * one)
    keys = [feature_key("A", "5m", "X", (0, 1, t), "sma@close", {"window": w}) for w in range(6)]
    c.put_many([(keys[i], np.full(t, float(i))) for i in range(3)])
    assert c.stats()["bytes"] == 3 * one and c.stats()["entries"] == 3
    c.get_many([keys[0]])  # 0 is now the most recently used
    c.put_many([(keys[3], np.full(t, 3.0))])  # evicts 1, the least recently used
    assert [a is not None for a in c.get_many(keys[:4])] == [True, False, True, True]
    assert c.stats()["evictions"] == 1 and c.stats()["bytes"] <= c.max_bytes
    c.put_many([(keys[4], np.zeros(4 * t))])  # larger than the bound: not stored
    assert c.get_many([keys[4]]) == [None] and c.stats()["entries"] == 3
    stored = c.get_many([keys[3]])[0]
    assert not stored.flags.writeable  # callers cannot corrupt the cache
    src = np.full(t, 5.0)
    c.put_many([(keys[5], src)])
    src[:] = -1.0  # the cache holds its own copy
    assert c.get_many([keys[5]])[0][0] == 5.0
    with pytest.raises(ValueError):
        InProcessCache(max_bytes=-1)


# ----------------------------------------------------------------------------
# the runner: cache from settings, invalidation on completion, same report
# ----------------------------------------------------------------------------


def test_cache_from_settings(monkeypatch):
    monkeypatch.setattr(mcache, "_redis_caches", {})
    monkeypatch.delenv("COHORTLAB_REDIS_URL", raising=False)
    c = feature_cache_from_settings()
    assert isinstance(c, InProcessCache) and feature_cache_from_settings() is c
    monkeypatch.setenv("COHORTLAB_REDIS_URL", REDIS_URL)
    r = feature_cache_from_settings()
    assert isinstance(r, RedisFeatureCache) and r.url == REDIS_URL and r.prefix == DEFAULT_PREFIX
    assert feature_cache_from_settings() is r


def _request(**bars) -> CohortRequest:
    return CohortRequest(bars=BarsRequest(**{"warmup_bars": 100, **bars}), agents=12, seed=5)


@needs_redis
def test_runner_invalidates_venue_when_cohort_completes(runner_redis, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./data here: the SYNTHETIC market
    cache = feature_cache_from_settings()
    assert isinstance(cache, RedisFeatureCache)
    other = feature_key("/another/venue", "5m", "X", (0, 1, 2), "sma@close", {"window": 2})
    stale = feature_key("SYNTHETIC", "5m", "BTC_USD", (0, 1, 2), "sma@close", {"window": 2})
    cache.put_many([(other, np.arange(2.0)), (stale, np.arange(2.0))])
    report = execute_cohort(_request(start="2024-01-02"), None)[2]
    assert report["data"] == "SYNTHETIC"
    st = cache.stats()
    # arrays were stored during the run, and the venue's were dropped when it completed
    assert st["misses"] > 0 and st["puts"] > 0 and st["errors"] == 0
    assert cache.get_many([stale, other])[0] is None and cache.get_many([other])[0] is not None
    assert len(_keys(runner_redis, DEFAULT_PREFIX)) == 1


@needs_redis
@pytest.mark.skipif(not BINANCE.is_dir(), reason="shared data not present")
def test_runner_on_a_folder_and_download_refresh(runner_redis, tmp_path, monkeypatch):
    # a cohort on real bars: its venue is the resolved folder, dropped at completion
    req = _request(data=str(BINANCE), start="2018-01-15", symbols=["ETH_BTC", "LTC_BTC"])
    cache = feature_cache_from_settings()
    execute_cohort(req, None)
    assert cache.stats()["puts"] > 0 and _keys(runner_redis, DEFAULT_PREFIX) == []

    # `data download` refreshes a folder: its entries are dropped (the exchange is
    # replaced by local rows, there is no network here)
    folder = tmp_path / "bars"
    rows = [[1_515_560_100_000 + i * 300_000, 1.0 + i, 1.5 + i, 0.5 + i, 1.2 + i, 10.0] for i in range(60)]
    write_ohlcv(rows, "ETH/BTC", folder)
    market = load_market(folder)
    with use_cache(cache):
        get_strategy("rsi_reversion").targets(market, [{"period": 5}])
    assert len(_keys(runner_redis, DEFAULT_PREFIX)) == 1

    def offline_download(exchange, symbols, timeframe, days, out, **kw):
        return [write_ohlcv(rows[:50], s, out) for s in symbols]

    monkeypatch.setattr("simulator.download.download", offline_download)
    rel = os.path.relpath(folder)
    assert download_bars("binance", ["ETH/BTC"], "5m", 1, rel) == [Path(rel) / "ETH_BTC.parquet"]
    assert _keys(runner_redis, DEFAULT_PREFIX) == []


@needs_redis
def test_cohort_report_same_with_and_without_cache(runner_redis, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    req = _request(start="2024-01-03")
    market = load_bars(req.bars)
    genomes = random_genomes(req.agents, market.symbols, seed=req.seed, max_leverage=req.max_leverage)

    def uncached():
        assert isinstance(current_cache(), NullCache)
        res = simulate_cohort(market, genomes, bankroll=req.bankroll, config=req.engine,
                              allocation=req.allocation, reserve=req.reserve)
        return {**cohort_report("unsaved", req.seed, res), "seeded_from": "random",
                "seeding_note": "random genomes: no store",
                "baselines": cohort_baselines(res, n_cohorts=req.baselines, seed=req.seed,
                                              max_leverage=req.max_leverage)}

    baseline = uncached()
    with_redis = execute_cohort(req, None)[2]  # cold: every array misses
    cache = feature_cache_from_settings()
    assert cache.stats()["misses"] > 0 and cache.stats()["hits"] < cache.stats()["misses"]
    # warm Redis first (no invalidation), so the run reads every array from it
    with use_cache(cache):
        simulate_cohort(market, genomes, bankroll=req.bankroll, config=req.engine)
    h0, m0 = cache.stats()["hits"], cache.stats()["misses"]
    warm = execute_cohort(req, None)[2]
    assert cache.stats()["misses"] == m0 and cache.stats()["hits"] > h0
    monkeypatch.delenv("COHORTLAB_REDIS_URL")
    in_process = execute_cohort(req, None)[2]
    same = [json.dumps(r, sort_keys=True, default=str) for r in (baseline, with_redis, warm, in_process)]
    assert same[0] == same[1] == same[2] == same[3]
    assert baseline["agents"] and baseline["ledger"]["balanced"]
