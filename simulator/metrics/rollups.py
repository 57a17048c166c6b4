"""Roll-ups of per-bar series into per-clock-hour summaries (JSON-ready)."""
from __future__ import annotations

import numpy as np

from simulator.metrics.common import MetricsError

__all__ = ["hourly_rollup"]


def hourly_rollup(timestamps, pnl, gross_exposure) -> list[dict]:
    """Per-UTC-clock-hour summary of the parent's PnL and gross exposure.

    Args:
        timestamps: ``(T,) datetime64[ns]`` UTC bar times, non-decreasing.
        pnl: ``(T,) float64`` parent PnL of each bar (quote currency).
        gross_exposure: ``(T,) float64`` parent gross exposure at each bar as a
            fraction of parent equity, ``>= 0``.

    Returns:
        One dict per clock hour (``HH:00:00`` to ``HH:59:59.999…`` UTC) that has
        at least one bar, in time order::

            {"hour": "2018-01-15T03:00:00Z",   # start of the hour, ISO 8601 UTC
             "pnl": float,                      # sum of pnl over the hour's bars
             "gross_exposure": float}           # mean over the hour's bars

        with plain Python ``str`` / ``float`` values (JSON-ready). Hours with no
        bars are omitted; ``[]`` for no bars.

    Raises:
        MetricsError: arrays not 1-D or of different lengths, NaT, timestamps
            decreasing, NaN/inf values, or negative gross exposure.
    """
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    p = np.asarray(pnl, dtype=np.float64)
    g = np.asarray(gross_exposure, dtype=np.float64)
    if ts.ndim != 1 or p.ndim != 1 or g.ndim != 1:
        raise MetricsError("hourly_rollup: timestamps, pnl and gross_exposure must be 1-D")
    if not len(ts) == len(p) == len(g):
        raise MetricsError(
            f"hourly_rollup: lengths differ (timestamps {len(ts)}, pnl {len(p)}, gross_exposure {len(g)})"
        )
    if len(ts) == 0:
        return []
    if np.isnat(ts).any():
        raise MetricsError("hourly_rollup: timestamps contain NaT")
    if (ts[1:] < ts[:-1]).any():
        raise MetricsError("hourly_rollup: timestamps must be non-decreasing")
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
        raise MetricsError("hourly_rollup: pnl and gross_exposure must be finite")
    if (g < 0).any():
        raise MetricsError("hourly_rollup: gross_exposure must be >= 0")
    hours = ts.astype("datetime64[h]")  # floors to the clock hour
    starts = np.flatnonzero(np.concatenate([[True], hours[1:] != hours[:-1]]))
    counts = np.diff(np.append(starts, len(ts)))
    pnl_sum = np.add.reduceat(p, starts)
    exp_mean = np.add.reduceat(g, starts) / counts
    labels = np.datetime_as_string(hours[starts], unit="s")
    return [
        {"hour": f"{label}Z", "pnl": float(s), "gross_exposure": float(e)}
        for label, s, e in zip(labels.tolist(), pnl_sum.tolist(), exp_mean.tolist())
    ]
