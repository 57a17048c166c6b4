"""Feature caches for runs: Redis when ``COHORTLAB_REDIS_URL`` is set, else in process.

:mod:`simulator.features` defines the cache protocol, the keys and the
in-process LRU; this module adds the shared one, :class:`RedisFeatureCache`,
and the pieces the runner uses:

* :func:`feature_cache_from_settings` -- the cache a run uses: one
  :class:`RedisFeatureCache` per Redis URL when ``COHORTLAB_REDIS_URL`` is set,
  else one process-wide :class:`~simulator.features.InProcessCache`.
* :func:`cohort_feature_cache` -- ``with cohort_feature_cache(venue):`` runs a
  simulation with that cache current and invalidates the venue when it ends.
* :func:`invalidate_venue` -- after bar files of a folder were (re)written.

Layout in Redis (``prefix`` default ``cohortlab:features``):

* ``<prefix>:d:<sha256 of the key text>`` -- one array: a header
  ``CLF1 <dtype> <shape>\\n`` then the raw bytes (C order), ``SET ... EX ttl_s``.
* ``<prefix>:i:<venue hash>:<symbol hash>`` -- the set of data keys of one
  venue and symbol (expires ``ttl_s`` after the last store into it).
* ``<prefix>:v:<venue hash>``, ``<prefix>:s:<symbol hash>``, ``<prefix>:all``
  -- the sets of index-set names per venue, per symbol and overall.

Lookups are one pipelined ``MGET``; stores one pipeline of ``SET`` + ``SADD``
+ ``EXPIRE``; invalidation reads and deletes the index sets it needs in one
``MULTI`` and deletes their data keys: no ``KEYS``/``SCAN`` anywhere. Keys
carry a digest of the input bars (see :mod:`simulator.features`), so an entry
written by a run racing an invalidation is still correct for its key; it just
lives until its TTL.

A cache must never fail a run: when Redis cannot be reached, lookups miss and
stores are skipped (counted in ``stats()["errors"]``, logged once per outage),
and Redis is not asked again for ``retry_after_s`` seconds.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import sys

import numpy as np

from manager.settings import Settings, get_settings
from simulator.features import FeatureCache, FeatureKey, InProcessCache, use_cache
from simulator.market import SYNTHETIC_LABEL

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_TTL_S",
    "RedisFeatureCache",
    "feature_cache_from_settings",
    "cohort_feature_cache",
    "invalidate_venue",
    "venue_of",
]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "cohortlab:features"
#: Default lifetime of a cached array in Redis: 6 hours (entries are normally
#: dropped earlier, when their cohort completes).
DEFAULT_TTL_S = 6 * 3600

_MAGIC = b"CLF1"
_CHUNK = 500  # keys per MGET / DEL


def _redis_module():
    """The ``redis`` client package, imported on first use: it is in the
    ``service`` extra, and runs without ``COHORTLAB_REDIS_URL`` never need it.

    Raises:
        ImportError: redis is not installed (the message names the extra).
    """
    try:
        import redis
    except ImportError as exc:
        raise ImportError("COHORTLAB_REDIS_URL is set but the redis package is not installed; install the "
                          "service extra: pip install -e '.[service]'", name="redis") from exc
    return redis


def _redis_errors() -> tuple[type[BaseException], ...]:
    """``(redis.RedisError,)`` once redis is imported, else ``()`` (no Redis
    cache can exist then, so there is no Redis error to catch)."""
    mod = sys.modules.get("redis")
    return (mod.RedisError,) if mod is not None else ()


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_array(arr: np.ndarray) -> bytes:
    """``CLF1 <dtype> <shape>\\n`` + the raw C-order bytes of ``arr``."""
    a = np.ascontiguousarray(arr)
    shape = ",".join(str(n) for n in a.shape)
    return b"%s %s %s\n" % (_MAGIC, a.dtype.str.encode(), shape.encode()) + a.tobytes()


def decode_array(blob: bytes) -> np.ndarray:
    """The array :func:`encode_array` encoded (read-only, no copy).

    Raises:
        ValueError: not such a value, or its size does not match the header.
    """
    head, sep, _ = blob[:128].partition(b"\n")
    parts = head.split(b" ")
    if not sep or len(parts) != 3 or parts[0] != _MAGIC:
        raise ValueError("not a cohortlab feature array")
    dtype = np.dtype(parts[1].decode())
    shape = tuple(int(n) for n in parts[2].decode().split(",") if n)
    data = memoryview(blob)[len(head) + 1:]
    if len(data) != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise ValueError("feature array size does not match its header")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


class RedisFeatureCache:
    """A :class:`~simulator.features.FeatureCache` in Redis, shared by every
    process using the same URL and prefix.

    Args:
        url: Redis URL, e.g. ``redis://127.0.0.1:6379/0``.
        prefix: namespace of every key this cache writes.
        ttl_s: lifetime of a stored array in seconds (None = until invalidated
            or evicted by Redis).
        retry_after_s: after a Redis error, seconds during which lookups miss
            and stores are skipped without asking Redis.
        client: an existing ``redis.Redis`` to use instead of connecting to ``url``.

    Raises:
        ValueError: ``ttl_s`` <= 0 or an empty prefix.
    """

    def __init__(self, url: str | None = None, prefix: str = DEFAULT_PREFIX,
                 ttl_s: int | None = DEFAULT_TTL_S, *, retry_after_s: float = 30.0,
                 client: "redis.Redis | None" = None):
        if ttl_s is not None and int(ttl_s) <= 0:
            raise ValueError(f"ttl_s={ttl_s}; allowed: > 0 seconds, or None")
        if not prefix:
            raise ValueError("prefix is empty")
        redis = _redis_module()
        if client is None:
            if not url:
                raise ValueError("a Redis url (or client) is required")
            client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=30.0)
        self.url = url
        self.prefix = prefix
        self.ttl_s = None if ttl_s is None else int(ttl_s)
        self.retry_after_s = float(retry_after_s)
        self.client = client
        self._lock = threading.Lock()
        self._hits = self._misses = self._puts = self._errors = 0
        self._down_until = 0.0

    # -- key names ------------------------------------------------------------

    def data_key(self, key: FeatureKey) -> str:
        """The Redis key holding ``key``'s array."""
        return f"{self.prefix}:d:{hashlib.sha256(key.text.encode()).hexdigest()}"

    def _index(self, venue: str, symbol: str) -> str:
        return f"{self.prefix}:i:{_h(venue)}:{_h(symbol)}"

    def _parents(self, index: str) -> tuple[str, str, str]:
        vh, sh = index.rsplit(":", 2)[-2:]
        return f"{self.prefix}:v:{vh}", f"{self.prefix}:s:{sh}", f"{self.prefix}:all"

    # -- failure handling ---------------------------------------------------

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, what: str, exc: Exception) -> None:
        with self._lock:
            self._errors += 1
            first = self._down_until == 0.0 or time.monotonic() >= self._down_until
            self._down_until = time.monotonic() + self.retry_after_s
        if first:
            log.warning("feature cache: Redis %s failed (%s: %s); computing without the cache "
                        "for %.0f s", what, type(exc).__name__, exc, self.retry_after_s)

    # -- protocol -------------------------------------------------------------

    def get_many(self, keys: Sequence[FeatureKey]) -> list[np.ndarray | None]:
        """One pipelined ``MGET``; unreadable values count as misses."""
        out: list[np.ndarray | None] = [None] * len(keys)
        if keys and self._available():
            names = [self.data_key(k) for k in keys]
            try:
                pipe = self.client.pipeline(transaction=False)
                for i in range(0, len(names), _CHUNK):
                    pipe.mget(names[i:i + _CHUNK])
                blobs = [b for chunk in pipe.execute() for b in chunk]
            except _redis_errors() as exc:
                self._failed("lookup", exc)
                blobs = [None] * len(keys)
            for i, blob in enumerate(blobs):
                if blob is not None:
                    try:
                        out[i] = decode_array(blob)
                    except ValueError:
                        out[i] = None
        hits = sum(a is not None for a in out)
        with self._lock:
            self._hits += hits
            self._misses += len(keys) - hits
        return out

    def put_many(self, items: Iterable[tuple[FeatureKey, np.ndarray]]) -> None:
        """One pipeline: ``SET`` each array (with the TTL) and add it to its
        venue/symbol index set."""
        items = list(items)
        if not items or not self._available():
            return
        pipe = self.client.pipeline(transaction=False)
        by_index: dict[str, list[str]] = {}
        for key, arr in items:
            name = self.data_key(key)
            pipe.set(name, encode_array(arr), ex=self.ttl_s)
            by_index.setdefault(self._index(key.venue, key.symbol), []).append(name)
        for index, names in by_index.items():
            pipe.sadd(index, *names)
            for parent in self._parents(index):
                pipe.sadd(parent, index)
            if self.ttl_s is not None:
                for k in (index, *self._parents(index)):
                    pipe.expire(k, self.ttl_s)
        try:
            pipe.execute()
        except _redis_errors() as exc:
            self._failed("store", exc)
            return
        with self._lock:
            self._puts += len(items)

    def invalidate(self, venue: str | None = None, symbol: str | None = None) -> int:
        """Delete the arrays of ``venue`` and/or ``symbol`` (both None: every
        array under this prefix). Returns how many arrays were deleted.

        Raises:
            redis.RedisError: Redis cannot be reached.
        """
        r = self.client
        if venue is not None and symbol is not None:
            indexes = [self._index(venue, symbol)]
        else:
            if venue is not None:
                parent = f"{self.prefix}:v:{_h(venue)}"
            elif symbol is not None:
                parent = f"{self.prefix}:s:{_h(symbol)}"
            else:
                parent = f"{self.prefix}:all"
            indexes = sorted(m.decode() for m in r.smembers(parent))
        if not indexes:
            return 0
        # read and drop the index sets atomically: a concurrent store lands in a
        # new set (and re-registers it) rather than in one being deleted
        tx = r.pipeline(transaction=True)
        for index in indexes:
            tx.smembers(index)
        tx.delete(*indexes)
        for index in indexes:
            for parent in self._parents(index):
                tx.srem(parent, index)
        res = tx.execute()
        names = sorted({n for members in res[:len(indexes)] for n in members})
        dropped = 0
        for i in range(0, len(names), _CHUNK):
            dropped += int(r.delete(*names[i:i + _CHUNK]))
        return dropped

    def stats(self) -> dict:
        """``hits``, ``misses`` (per array looked up by this process), ``puts``
        (arrays stored), ``errors`` (failed Redis calls)."""
        with self._lock:
            return {"hits": self._hits, "misses": self._misses, "puts": self._puts,
                    "errors": self._errors}

    def __repr__(self) -> str:
        return f"RedisFeatureCache(url={self.url!r}, prefix={self.prefix!r}, ttl_s={self.ttl_s})"


# ----------------------------------------------------------------------------
# the cache of a run
# ----------------------------------------------------------------------------

_lock = threading.Lock()
_redis_caches: dict[str, RedisFeatureCache] = {}
_process_cache: InProcessCache | None = None


def feature_cache_from_settings(settings: Settings | None = None) -> FeatureCache:
    """The feature cache runs use: a :class:`RedisFeatureCache` (one per URL,
    reused) when ``COHORTLAB_REDIS_URL`` is set, else the process-wide
    :class:`~simulator.features.InProcessCache` (256 MiB LRU).

    Args:
        settings: settings to read (default: the environment, read now).
    """
    s = settings if settings is not None else get_settings()
    global _process_cache
    with _lock:
        if s.redis_url:
            cache = _redis_caches.get(s.redis_url)
            if cache is None:
                cache = _redis_caches[s.redis_url] = RedisFeatureCache(s.redis_url)
            return cache
        if _process_cache is None:
            _process_cache = InProcessCache()
        return _process_cache


def venue_of(data: str | Path) -> str:
    """The venue a bar folder gets in cache keys: its resolved path, as
    ``MarketData.source`` has it (``SYNTHETIC`` stays as it is)."""
    if str(data) == SYNTHETIC_LABEL:
        return SYNTHETIC_LABEL
    return str(Path(data).expanduser().resolve())


def _invalidate(cache: FeatureCache, venue: str) -> int:
    try:
        return cache.invalidate(venue=venue)
    except _redis_errors() as exc:
        log.warning("feature cache: could not invalidate %s (%s: %s)", venue, type(exc).__name__, exc)
        return 0


def invalidate_venue(data: str | Path, cache: FeatureCache | None = None) -> int:
    """Drop the cached arrays of a bar folder: call after (re)writing its files.

    Args:
        data: the bar folder (any spelling of its path) or ``SYNTHETIC``.
        cache: the cache to clean (default :func:`feature_cache_from_settings`).

    Returns:
        How many arrays were dropped (0 when the cache could not be reached;
        a warning is logged).
    """
    return _invalidate(cache if cache is not None else feature_cache_from_settings(), venue_of(data))


@contextmanager
def cohort_feature_cache(venue: str | None) -> Iterator[FeatureCache]:
    """Run the block with :func:`feature_cache_from_settings` as the current
    feature cache and, when it ends (completed or failed), invalidate ``venue``
    (``MarketData.source`` of the cohort's bars, used as is; None = no
    invalidation). An unreachable cache never fails the block."""
    cache = feature_cache_from_settings()
    try:
        with use_cache(cache):
            yield cache
    finally:
        if venue:
            _invalidate(cache, venue)
