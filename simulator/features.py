"""The feature cache: indicator arrays kept between strategy calls.

A strategy family computes indicator arrays (SMA, RSI, ...) on ``(T, S)`` bars.
The same arrays are needed again by other families (Bollinger's middle band is
the SMA of ``sma_cross``), by other workers trading the same venue, and by
repeated runs over the same bars. This module keys one ``(T,)`` array per
symbol and configuration and looks it up in the *current cache*:

* :class:`NullCache` -- the default: nothing is cached, families compute as if
  this module did not exist (same code path, same speed).
* :class:`InProcessCache` -- a bounded LRU in this process (by bytes).
* ``manager.cache.RedisFeatureCache`` -- shared through Redis (the simulator
  imports no Redis client; see :mod:`manager.cache`).

Choose the cache for a block of code with :func:`use_cache` (a
:mod:`contextvars` variable, so it follows the calling thread / task; a new
thread starts with the :class:`NullCache`)::

    with use_cache(InProcessCache()):
        signals, weight = build_signals(market, genomes)

**Key** (:func:`feature_key`): ``venue, timeframe, symbol, window, indicator,
params`` plus ``data``, a digest of the symbol's input column(s):

* ``venue`` = ``MarketData.source``: the resolved folder the bars were read
  from, or ``SYNTHETIC`` for the built-in market. Invalidation works per venue
  (and per symbol).
* ``window`` = ``(first bar time, last bar time, number of bars)`` of the arrays
  (ns since the epoch), so a different window never shares a key.
* ``indicator`` names the computation and its input field(s) (``sma@close``).
* ``params`` the configuration (``{"window": 20}``), canonically ordered.
* ``data`` -- a digest (SHA-256, first 128 bits) of the symbol's input values
  over the window. Labels alone do not identify bars: two SYNTHETIC markets with
  different seeds or symbol sets, a folder refreshed on one worker but not on
  another, or hand-built test markets share venue and window. With the digest
  a key can only ever map to the array computed from exactly those inputs, so a
  hit is always correct and invalidation is about memory, not correctness.
  Hashing costs ~30 us per symbol and field for 5,760 bars, and only when a
  cache is in use.

An indicator value of one symbol depends only on that symbol's column (every
kernel in :mod:`simulator.indicators` is column-wise), so arrays cached from a
market with other symbols are reused bit for bit: :func:`cached_indicator_many`
returns exactly the numbers the uncached computation returns.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Protocol, Sequence, runtime_checkable

import numpy as np

from simulator.market import MarketData

__all__ = [
    "FEATURE_VERSION",
    "FeatureKey",
    "FeatureCache",
    "NullCache",
    "InProcessCache",
    "feature_key",
    "market_window",
    "use_cache",
    "current_cache",
    "cached_indicator",
    "cached_indicator_many",
]

#: Bumped whenever an indicator kernel changes its numbers, so arrays cached by
#: an older release (in a shared Redis) are never read back.
FEATURE_VERSION = 1

#: Default bound of an :class:`InProcessCache` (bytes of array data).
DEFAULT_MAX_BYTES = 256 * 2**20


# ----------------------------------------------------------------------------
# keys
# ----------------------------------------------------------------------------


class FeatureKey(NamedTuple):
    """Identity of one cached ``(T,)`` indicator array (hashable; see the module
    docstring for the meaning of each part). Build it with :func:`feature_key`."""

    venue: str
    timeframe: str
    symbol: str
    window: tuple[int, int, int]
    indicator: str
    params: tuple[tuple[str, Any], ...]
    data: str = ""

    @property
    def text(self) -> str:
        """The canonical one-line form (what a shared cache hashes into its key)."""
        w0, w1, n = self.window
        params = ",".join(f"{k}={v!r}" for k, v in self.params)
        return "\x1f".join(
            (f"v{FEATURE_VERSION}", self.venue, self.timeframe, self.symbol, f"{w0}..{w1}#{n}",
             self.indicator, params, self.data)
        )


def _scalar(value: Any) -> Any:
    """A parameter value as a plain Python scalar (numpy scalars unwrapped)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    raise TypeError(f"feature parameter value {value!r} is not an int, float, str or bool")


def _canonical_params(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((str(k), _scalar(v)) for k, v in params.items()))


def feature_key(venue: str, timeframe: str, symbol: str, window: Sequence[int], indicator: str,
                params: Mapping[str, Any], data: str = "") -> FeatureKey:
    """The cache key of one symbol's indicator array.

    Args:
        venue: where the bars come from: ``MarketData.source`` (resolved folder,
            or ``SYNTHETIC``).
        timeframe: bar size in exchange notation (``5m``).
        symbol: file-name symbol (``ETH_BTC``).
        window: ``(first bar time, last bar time, number of bars)``, times in ns
            since the epoch (see :func:`market_window`).
        indicator: computation and input field(s), e.g. ``sma@close``.
        params: the configuration, e.g. ``{"window": 20}`` (ints, floats, strs,
            bools; numpy scalars are unwrapped; order does not matter).
        data: digest of the symbol's input values ("" when not known).

    Raises:
        TypeError: a parameter value of another type.
        ValueError: ``window`` is not three integers.
    """
    w = tuple(int(v) for v in window)
    if len(w) != 3:
        raise ValueError(f"window={window!r}: expected (first_ns, last_ns, n_bars)")
    return FeatureKey(str(venue), str(timeframe), str(symbol), w, str(indicator),
                      _canonical_params(params), str(data))


def market_window(market: MarketData) -> tuple[int, int, int]:
    """``(first bar time, last bar time, number of bars)`` of ``market`` (ns
    since the epoch; ``(0, 0, 0)`` for a market without bars)."""
    n = market.n_bars
    if n == 0:
        return (0, 0, 0)
    ts = market.timestamps.astype("datetime64[ns]").astype(np.int64)
    return (int(ts[0]), int(ts[-1]), n)


def _digests(market: MarketData, fields: Sequence[str]) -> list[str]:
    """Per symbol, the first 128 bits of the SHA-256 of its values of ``fields``
    (in order), hex."""
    cols = [np.ascontiguousarray(np.asarray(getattr(market, f), dtype=np.float64).T) for f in fields]
    out = []
    for s in range(len(market.symbols)):
        h = hashlib.sha256()
        for c in cols:
            h.update(c[s])
        out.append(h.hexdigest()[:32])
    return out


# ----------------------------------------------------------------------------
# caches
# ----------------------------------------------------------------------------


@runtime_checkable
class FeatureCache(Protocol):
    """What a feature cache does. Arrays are treated as immutable: a cache
    stores its own copy (or bytes) and callers never write into what it
    returns."""

    def get_many(self, keys: Sequence[FeatureKey]) -> list[np.ndarray | None]:
        """The cached array of each key, ``None`` where there is none (a miss)."""

    def put_many(self, items: Iterable[tuple[FeatureKey, np.ndarray]]) -> None:
        """Store ``(key, array)`` pairs (replacing what a key held)."""

    def invalidate(self, venue: str | None = None, symbol: str | None = None) -> int:
        """Drop the entries of ``venue`` and/or ``symbol`` (both None: all);
        returns how many entries were dropped."""

    def stats(self) -> dict:
        """Counters since creation: at least ``hits`` and ``misses`` (one per
        array looked up)."""


class NullCache:
    """A cache that holds nothing: every lookup misses and nothing is stored.
    The default current cache; :func:`cached_indicator_many` then calls the
    computation directly without building keys."""

    def get_many(self, keys: Sequence[FeatureKey]) -> list[np.ndarray | None]:
        return [None] * len(keys)

    def put_many(self, items: Iterable[tuple[FeatureKey, np.ndarray]]) -> None:
        return None

    def invalidate(self, venue: str | None = None, symbol: str | None = None) -> int:
        return 0

    def stats(self) -> dict:
        return {"hits": 0, "misses": 0}


class InProcessCache:
    """A least-recently-used cache in this process, bounded by bytes.

    Stores a read-only copy of each array; when the arrays held exceed
    ``max_bytes`` the least recently used ones are evicted (an array larger than
    ``max_bytes`` on its own is not stored). Thread-safe.

    Args:
        max_bytes: bound on the bytes of array data held (default 256 MiB).

    Raises:
        ValueError: ``max_bytes`` < 0.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_bytes < 0:
            raise ValueError(f"max_bytes={max_bytes}; allowed: >= 0")
        self.max_bytes = int(max_bytes)
        self._data: OrderedDict[FeatureKey, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._hits = self._misses = self._puts = self._evictions = 0

    def get_many(self, keys: Sequence[FeatureKey]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        with self._lock:
            for k in keys:
                arr = self._data.get(k)
                if arr is None:
                    self._misses += 1
                else:
                    self._hits += 1
                    self._data.move_to_end(k)
                out.append(arr)
        return out

    def put_many(self, items: Iterable[tuple[FeatureKey, np.ndarray]]) -> None:
        for key, arr in items:
            copy = np.array(arr, copy=True, order="C")
            copy.flags.writeable = False
            size = copy.nbytes
            with self._lock:
                old = self._data.pop(key, None)
                if old is not None:
                    self._bytes -= old.nbytes
                if size > self.max_bytes:
                    continue
                self._data[key] = copy
                self._bytes += size
                self._puts += 1
                while self._bytes > self.max_bytes:
                    _, dropped = self._data.popitem(last=False)
                    self._bytes -= dropped.nbytes
                    self._evictions += 1

    def invalidate(self, venue: str | None = None, symbol: str | None = None) -> int:
        with self._lock:
            doomed = [k for k in self._data
                      if (venue is None or k.venue == venue) and (symbol is None or k.symbol == symbol)]
            for k in doomed:
                self._bytes -= self._data.pop(k).nbytes
        return len(doomed)

    def stats(self) -> dict:
        """``hits``, ``misses``, ``puts``, ``evictions``, ``entries``, ``bytes``,
        ``max_bytes``."""
        with self._lock:
            return {"hits": self._hits, "misses": self._misses, "puts": self._puts,
                    "evictions": self._evictions, "entries": len(self._data), "bytes": self._bytes,
                    "max_bytes": self.max_bytes}


# ----------------------------------------------------------------------------
# the current cache
# ----------------------------------------------------------------------------

_NULL = NullCache()
_current: ContextVar[FeatureCache] = ContextVar("cohortlab_feature_cache", default=_NULL)


def current_cache() -> FeatureCache:
    """The cache :func:`cached_indicator_many` uses here (default: a :class:`NullCache`)."""
    return _current.get()


@contextmanager
def use_cache(cache: FeatureCache | None) -> Iterator[FeatureCache]:
    """Make ``cache`` the current cache inside the ``with`` block (None = a
    :class:`NullCache`); the previous one is restored on exit."""
    token = _current.set(_NULL if cache is None else cache)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


# ----------------------------------------------------------------------------
# cached computation
# ----------------------------------------------------------------------------


def _fields(field: str | Sequence[str]) -> tuple[str, ...]:
    return (field,) if isinstance(field, str) else tuple(field)


def cached_indicator_many(
    market: MarketData,
    indicator: str,
    params: Mapping[str, Sequence[Any]],
    field: str | Sequence[str],
    compute: Callable[[np.ndarray, np.ndarray], Any],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """K indicator configurations on ``market``, through the current cache.

    Looks up one ``(T,)`` array per configuration and symbol (one ``get_many``
    for all of them); every configuration with a missing symbol is computed for
    all symbols, in one ``compute`` call for all such configurations, and its
    missing arrays are stored (one ``put_many``). With the :class:`NullCache`
    this is just ``compute(arange(K), out)``.

    Args:
        market: the bars (venue, timeframe, window and symbols come from it).
        indicator: name of the computation, e.g. ``sma`` (the key gets
            ``@field`` appended).
        params: the K configurations column-wise, ``{"window": [10, 30]}``; the
            k-th configuration is ``{name: values[k]}``.
        field: the ``MarketData`` field(s) the indicator reads (``close``, or
            ``("high", "low", "close", "volume")``); their values are digested
            into the key.
        compute: ``compute(idx, dst)`` writes the configurations ``idx`` (an
            int64 index array into the K) into ``dst``, a C-contiguous
            ``(len(idx), T, S) float64`` array.
        out: where to write the result (C-contiguous ``(K, T, S) float64``);
            default a new array.

    Returns:
        ``out``: the ``(K, T, S)`` values, equal bit for bit to the uncached
        computation.
    """
    cols = {name: np.asarray(v).reshape(-1) for name, v in params.items()}
    n_k = len(next(iter(cols.values()))) if cols else 1
    n_t, n_s = market.n_bars, len(market.symbols)
    if out is None:
        out = np.empty((n_k, n_t, n_s))
    cache = _current.get()
    if isinstance(cache, NullCache) or n_k == 0 or n_t == 0 or n_s == 0:
        compute(np.arange(n_k, dtype=np.int64), out)
        return out
    fields = _fields(field)
    name = f"{indicator}@{'+'.join(fields)}"
    window = market_window(market)
    digests = _digests(market, fields)
    tf, venue = market.timeframe, market.source
    keys = []
    for k in range(n_k):
        p = _canonical_params({c: v[k] for c, v in cols.items()})
        keys.extend(FeatureKey(venue, tf, sym, window, name, p, digests[s])
                    for s, sym in enumerate(market.symbols))
    found = [a if a is not None and a.shape == (n_t,) and a.dtype == np.float64 else None
             for a in cache.get_many(keys)]
    missing: list[int] = []
    for k in range(n_k):
        row = found[k * n_s:(k + 1) * n_s]
        if any(a is None for a in row):
            missing.append(k)
        else:
            np.stack(row, axis=1, out=out[k])
    if missing:
        idx = np.asarray(missing, dtype=np.int64)
        if len(missing) == n_k:
            compute(idx, out)
        else:
            tmp = np.empty((len(missing), n_t, n_s))
            compute(idx, tmp)
            out[idx] = tmp
        cache.put_many(
            (keys[k * n_s + s], out[k, :, s])
            for k in missing for s in range(n_s) if found[k * n_s + s] is None
        )
    return out


def cached_indicator(
    market: MarketData,
    indicator: str,
    params: Mapping[str, Any],
    field: str | Sequence[str],
    compute: Callable[[], np.ndarray],
) -> np.ndarray:
    """One ``(T, S)`` indicator computation through the current cache.

    Looks up one ``(T,)`` array per symbol; if any symbol misses, ``compute()``
    runs once for the whole ``(T, S)`` and the missing symbols are stored.

    Args:
        market: the bars.
        indicator: name of the computation (``sma``).
        params: its configuration (``{"window": 20}``).
        field: the ``MarketData`` field(s) it reads (see
            :func:`cached_indicator_many`).
        compute: returns the uncached ``(T, S)`` float64 result.

    Returns:
        ``(T, S) float64``, equal bit for bit to ``compute()`` (which it is,
        with the :class:`NullCache`).
    """
    if isinstance(_current.get(), NullCache):
        return compute()

    def one(idx, dst):
        dst[0] = compute()

    return cached_indicator_many(market, indicator, {k: [v] for k, v in params.items()}, field, one)[0]
