"""Data roots: the folders the HTTP API may read bar data from, and what HTTP may say about them.

The API (and the dashboard's launch form) names a data folder by its **name**
under a configured root (``binance-5m``), never by a server path:

* :func:`data_roots` -- the roots (``COHORTLAB_DATA_ROOTS``; default: the
  ``COHORTLAB_DATA_DIR`` folder and ``./data``), resolved (symlinks followed);
* :func:`list_data_folders` -- the folders under the roots that hold bar files,
  with their symbols and first/last bar time (the launch form's list; cheap:
  file names, Parquet statistics or a CSV's first and last line; cached by mtime);
* :func:`resolve_data_folder` -- a folder name to its real path, refused
  (:class:`DataFolderError`, a ``ValueError``) unless the folder and every bar
  file in it resolve, after symlinks, under a root.

What leaves the server over HTTP is made safe here too, for readers who need no
token: :func:`public_path` rewrites absolute paths to a path relative to their
root (``binance-5m/ETH_BTC.csv``) or, outside every root, to the last component;
:func:`public_error` also drops cell contents from error messages, keeping the
file and the row (``binance-5m/X.csv: data row 3: not a number``);
:func:`public_view` applies both to a whole read-model document. The CLI, run by
the data's owner, keeps the full messages.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any, Iterable

from simulator.data import DATA_SUFFIXES, parse_symbol

__all__ = ["DataFolderError", "data_roots", "list_data_folders", "public_error", "public_label", "public_path",
           "public_view", "resolve_data_folder"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class DataFolderError(ValueError):
    """A data folder name that is not a folder with bar data under the data roots.

    Its message is safe to return over HTTP: no server path, no file listing."""


def data_roots(settings: Any = None) -> list[Path]:
    """The configured data roots, resolved (symlinks followed), existing folders only, in order.

    ``COHORTLAB_DATA_ROOTS`` when set; else ``COHORTLAB_DATA_DIR`` (when set) and ``./data``.
    """
    if settings is None:
        from manager.settings import get_settings

        settings = get_settings()
    configured = list(settings.data_roots or [])
    if not configured:
        configured = ([settings.data_dir] if settings.data_dir else []) + ["data"]
    roots: list[Path] = []
    for entry in configured:
        try:
            path = Path(entry).expanduser().resolve()
        except (OSError, RuntimeError):
            continue
        if path.is_dir() and path not in roots:
            roots.append(path)
    return roots


def _within(path: Path, roots: Iterable[Path]) -> Path | None:
    """The root ``path`` (already resolved) lies in, or None."""
    for root in roots:
        if path == root or path.is_relative_to(root):
            return root
    return None


def _bar_files(folder: Path) -> list[Path]:
    """Bar files directly in ``folder`` (hidden ones skipped), sorted by name; [] when unreadable."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    return [Path(e.path) for e in entries
            if not e.name.startswith(".") and e.name.lower().endswith(DATA_SUFFIXES) and e.is_file()]


def _candidates(roots: list[Path]) -> list[tuple[str, Path, Path]]:
    """``(name, folder as found, root)``: each root holding bar files itself (named by its
    last component) and each of its sub-folders (one level, hidden ones skipped); first name wins."""
    seen: dict[str, tuple[str, Path, Path]] = {}
    for root in roots:
        found = [(root.name, root)]
        try:
            found += [(e.name, Path(e.path)) for e in sorted(os.scandir(root), key=lambda e: e.name)
                      if not e.name.startswith(".") and e.is_dir()]
        except OSError:
            pass
        for name, folder in found:
            if _NAME.match(name) and name not in seen:
                seen[name] = (name, folder, root)
    return list(seen.values())


def _confined(folder: Path, roots: list[Path]) -> Path | None:
    """``folder`` resolved when it and each of its bar files resolve under a root, else None."""
    try:
        real = folder.resolve()
    except (OSError, RuntimeError):
        return None
    if _within(real, roots) is None:
        return None
    for f in _bar_files(real):
        try:
            if _within(f.resolve(), roots) is None:
                return None
        except (OSError, RuntimeError):
            return None
    return real


def resolve_data_folder(name: str, roots: list[Path] | None = None) -> Path:
    """The real path of the data folder ``name`` under the data roots.

    Args:
        name: a folder name as :func:`list_data_folders` gives it (no ``/``, no ``..``).
        roots: the roots (None = :func:`data_roots`).

    Raises:
        DataFolderError: ``name`` is not such a folder, resolves outside the roots
            (a symlink pointing out), holds a bar file linking outside them, or holds
            no bar files. The message names the allowed folders, never a path.
    """
    roots = data_roots() if roots is None else roots
    allowed = [f["name"] for f in list_data_folders(roots)]
    hint = f"allowed: {', '.join(allowed)}" if allowed else "no data folders are configured (COHORTLAB_DATA_ROOTS)"
    if not isinstance(name, str) or not _NAME.match(name):
        raise DataFolderError(f"not a data folder name (a folder name under the data roots, not a path); {hint}")
    match = next((c for c in _candidates(roots) if c[0] == name), None)
    if match is None:
        raise DataFolderError(f"no data folder named {name!r}; {hint}")
    real = _confined(match[1], roots)
    if real is None:
        raise DataFolderError(f"data folder {name!r} is not usable: it resolves outside the data roots; {hint}")
    if not _bar_files(real):
        raise DataFolderError(f"data folder {name!r} holds no bar files ({', '.join(DATA_SUFFIXES)}); {hint}")
    return real


# ----------------------------------------------------------------- the folder listing

_cache: dict[tuple[str, int, int], tuple[str | None, str | None]] = {}
_cache_lock = threading.Lock()


def _iso(value: Any) -> str | None:
    import pandas as pd

    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            big = abs(float(value))
            unit = "s" if big < 1e11 else "ms" if big < 1e14 else "us" if big < 1e17 else "ns"
            ts = pd.Timestamp(value, unit=unit, tz="UTC")
        else:
            text = str(value).strip().strip('"')
            try:
                return _iso(float(text))
            except ValueError:
                pass
            ts = pd.Timestamp(text)
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    except (ValueError, TypeError, OverflowError):
        return None
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _csv_span(path: Path) -> tuple[str | None, str | None]:
    """First and last time of a CSV: its header, first and last line only."""
    with open(path, "rb") as fh:
        header = fh.readline().decode("utf-8", "replace").strip().lower().split(",")
        first = fh.readline().decode("utf-8", "replace").strip()
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(size - 4096, 0))
        lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    col = next((header.index(c) for c in ("timestamp", "date", "time", "datetime") if c in header), 0)
    last = lines[-1] if lines else ""
    pick = lambda line: line.split(",")[col] if len(line.split(",")) > col else ""  # noqa: E731
    return (_iso(pick(first)) if first else None), (_iso(pick(last)) if last else None)


def _columnar_span(path: Path) -> tuple[str | None, str | None]:
    """First and last time of a Parquet file (column statistics) or a feather file (its time column)."""
    import pyarrow.compute as pc

    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        col = next((n for n in names if n.lower() in ("timestamp", "date", "time", "datetime")), None)
        if col is None:
            return None, None
        idx = names.index(col)
        lows, highs = [], []
        for i in range(pf.metadata.num_row_groups):
            stats = pf.metadata.row_group(i).column(idx).statistics
            if stats is None or not stats.has_min_max:
                table = pf.read(columns=[col])  # no statistics: read only that column
                lows, highs = [pc.min(table[col]).as_py()], [pc.max(table[col]).as_py()]
                break
            lows.append(stats.min)
            highs.append(stats.max)
        return (_iso(min(lows)) if lows else None), (_iso(max(highs)) if highs else None)
    import pyarrow.feather as feather

    table = feather.read_table(path, memory_map=True)
    col = next((n for n in table.column_names if n.lower() in ("timestamp", "date", "time", "datetime")), None)
    if col is None or table.num_rows == 0:
        return None, None
    return _iso(pc.min(table[col]).as_py()), _iso(pc.max(table[col]).as_py())


def _span(path: Path) -> tuple[str | None, str | None]:
    """``(first, last)`` bar time of one file (ISO UTC), cached by path, mtime and size; None when unknown."""
    try:
        st = path.stat()
    except OSError:
        return None, None
    key = (str(path), st.st_mtime_ns, st.st_size)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    try:
        span = _csv_span(path) if path.suffix.lower() == ".csv" else _columnar_span(path)
    except Exception:  # noqa: BLE001 - an unreadable file: the listing shows no dates, the run says why
        span = (None, None)
    with _cache_lock:
        if len(_cache) > 4096:
            _cache.clear()
        _cache[key] = span
    return span


def _to_iso(value: Any) -> str | None:
    return value if isinstance(value, str) or value is None else _iso(value)


def list_data_folders(roots: list[Path] | None = None) -> list[dict[str, Any]]:
    """The data folders under the roots, by name: what the API's ``data`` accepts.

    Returns:
        ``[{"name", "symbols", "first", "last"}, ...]`` sorted by name: ``symbols``
        from the file names; ``first`` / ``last`` the earliest and latest bar time
        over its files (ISO 8601 UTC, None when unknown). Folders that resolve
        outside the roots or hold no bar files are left out. No server path.
    """
    roots = data_roots() if roots is None else roots
    out = []
    for name, folder, _root in _candidates(roots):
        real = _confined(folder, roots)
        files = _bar_files(real) if real is not None else []
        if not files:
            continue
        spans = [_span(f) for f in files]
        firsts = [s[0] for s in spans if s[0]]
        lasts = [s[1] for s in spans if s[1]]
        out.append({"name": name, "symbols": sorted({parse_symbol(f)[0] for f in files}),
                    "first": min(firsts) if firsts else None, "last": max(lasts) if lasts else None})
    return sorted(out, key=lambda f: f["name"])


# ----------------------------------------------------------------- what HTTP may show

_ABS_PATH = re.compile(r"(?<![\w.~/])/+(?:[^\s'\"/:,;()<>\[\]]+/)*[^\s'\"/:,;()<>\[\]]*")
_ROW = re.compile(r"data rows? \d+(?: and \d+)?")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_ASSIGNED = re.compile(r"\b(\w+)=[^\s,;()]+")
_CATEGORIES = (("unparseable timestamp", "unparseable timestamp"), ("not a number", "not a number"),
               ("nan or missing", "missing value"), ("non-positive", "non-positive price"),
               ("negative volume", "negative volume"), ("duplicate timestamp", "duplicate timestamp"),
               ("unsorted", "unsorted timestamps"), ("same", "two rows in the same bar"),
               ("high", "inconsistent OHLC prices"), ("low", "inconsistent OHLC prices"),
               ("range", "value out of range"), ("timeframe", "timeframe mismatch"))
_MAX = 600


def public_path(text: str, roots: list[Path] | None = None) -> str:
    """``text`` with every absolute server path made public: a path under a data root
    relative to that root (``/srv/data/binance-5m/X.csv`` -> ``binance-5m/X.csv``; the root
    itself -> its name), any other absolute path -> its last component."""
    if not isinstance(text, str) or "/" not in text:
        return text
    roots = data_roots() if roots is None else roots

    def swap(match: re.Match) -> str:
        raw = match.group(0)
        if not raw.strip("/"):
            return raw
        path = Path(raw)
        for root in roots:
            for form in (root, Path(os.path.abspath(root))):
                if path == form:
                    return root.name
                if path.is_relative_to(form):
                    return str(path.relative_to(form))
        top = path.parts[1] if len(path.parts) > 1 else ""
        if not os.path.exists("/" + top):  # a URL path such as /api/jobs/x, not a server file
            return raw
        return path.name or raw

    return _ABS_PATH.sub(swap, text)


def public_label(label: str | None, roots: list[Path] | None = None) -> str | None:
    """A run's ``data_label`` for HTTP: ``SYNTHETIC`` as is, a folder as its name under its root."""
    return public_path(label, roots) if isinstance(label, str) else label


def public_error(message: str | None, roots: list[Path] | None = None) -> str | None:
    """An error message safe to return over HTTP: no absolute server path, no cell contents.

    A message about a row keeps the file (relative to its root) and the row, then a
    fixed description (``binance-5m/X.csv: data row 3: not a number``); a message
    about a file drops what it quoted from it (header names, parser detail); quoted
    literals and ``name=value`` figures are replaced by ``…``. Idempotent.
    """
    if not isinstance(message, str):
        return message
    text = public_path(message, roots)
    row = _ROW.search(text)
    if row is not None:
        rest = text[row.end():].lower()
        label = next((lab for key, lab in _CATEGORIES if key in rest), "invalid value")
        head = _QUOTED.sub("'…'", text[:row.end()])
        return f"{head}: {label} (cell values are not shown over HTTP)"[:_MAX]
    at = text.find("; found")
    if at >= 0:  # the header's cells follow
        text = text[:at]
    read = re.search(r"cannot read as \w+ file", text)
    if read is not None:  # the parser's detail quotes the file
        text = text[:read.end()]
    if any(suffix in text.lower() for suffix in DATA_SUFFIXES):
        text = _ASSIGNED.sub(r"\1=…", text)
    text = _QUOTED.sub("'…'", text)
    return text[:_MAX]


_ERROR_KEYS = frozenset({"reason", "error", "prices_error"})


def public_view(doc: Any, roots: list[Path] | None = None) -> Any:
    """A copy of a read-model document (dicts, lists, strings) for HTTP: ``reason`` /
    ``error`` / ``prices_error`` values through :func:`public_error`, every other string
    through :func:`public_path`."""
    roots = data_roots() if roots is None else roots

    def walk(value: Any, key: str | None = None) -> Any:
        if isinstance(value, str):
            return public_error(value, roots) if key in _ERROR_KEYS else public_path(value, roots)
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, key) for v in value]
        return value

    return walk(doc)
