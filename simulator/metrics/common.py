"""The error type and the input checks shared by the metric modules.

Every metric accepts ``(N, T)`` arrays (one row per agent) or a ``(T,)`` series
for one agent; these helpers turn either into a finite ``(N, T) float64`` array
and back, and reject what no metric can be computed from (see
:mod:`simulator.metrics` for the conventions).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["MetricsError"]


class MetricsError(ValueError):
    """Input that no metric can be computed from (shape, NaN/inf, negative money)."""


# --------------------------------------------------------------------------- helpers


def _rows(x, name: str) -> tuple[np.ndarray, bool]:
    """``x`` as a finite ``(N, T) float64`` array and whether it was 1-D."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr, one = arr[None, :], True
    elif arr.ndim == 2:
        one = False
    else:
        raise MetricsError(f"{name}: expected a (T,) or (N, T) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise MetricsError(f"{name}: contains NaN or inf")
    return arr, one


def _per_row(x, name: str, n: int, one: bool) -> np.ndarray:
    """``x`` (scalar, or ``(N,)``) as a finite ``(n,) float64`` array."""
    arr = np.asarray(x, dtype=np.float64)
    if one and arr.ndim != 0:
        raise MetricsError(f"{name}: must be a scalar for a 1-D series, got shape {arr.shape}")
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise MetricsError(f"{name}: expected shape ({n},), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise MetricsError(f"{name}: contains NaN or inf")
    return arr


def _out(values: np.ndarray, one: bool):
    """``(N,)`` result, or a Python float for a 1-D input."""
    return float(values[0]) if one else values


def _check_ppy(periods_per_year) -> float:
    ppy = float(periods_per_year)
    if not math.isfinite(ppy) or ppy <= 0:
        raise MetricsError(f"periods_per_year must be a positive finite number, got {periods_per_year!r}")
    return ppy


def _non_constant(r: np.ndarray) -> np.ndarray:
    """``(N,) bool``: rows that are not all equal.

    Needed because the floating-point standard deviation of identical values can
    be a residue of ~1e-18 instead of 0, which would turn "undefined" into an
    arbitrary huge ratio.
    """
    return r.max(axis=1) != r.min(axis=1)
