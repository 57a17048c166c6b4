"""Documents of the learning aggregate: hall-of-fame versions, populations,
knowledge records, search trials and study settings (shapes: see
:mod:`manager.store.ports.learning`). Cycle ids and study names follow the run
id rules (:func:`~manager.store.documents.values.check_id`)."""

from __future__ import annotations

from typing import Any

from manager.store.errors import MISSING, InvalidDocument, StudyMismatch
from manager.store.documents.values import (
    check_id,
    check_mode,
    normalise_timestamp,
    require_list,
    require_mapping,
    require_number,
    require_str,
    timestamp_or_now,
    to_document,
)

__all__ = [
    "check_study_meta",
    "check_trained_by",
    "knowledge_window",
    "population_window",
    "study_window",
    "training_window",
    "prepare_hall_of_fame",
    "prepare_knowledge",
    "prepare_population",
    "prepare_study_meta",
    "prepare_trial",
]

# Keys of a search trial that only the store sets.
_STORE_SET_TRIAL_KEYS = ("index", "saved_at")


# -- training windows (the point-in-time rule) ------------------------------------------


def training_window(start: Any, end: Any, where: str) -> tuple[str | None, str | None]:
    """Validate the training window ``[start, end)`` of a learning artefact.

    Args:
        start: first moment of the training data (ISO 8601 with a UTC offset,
            or an aware datetime), or None.
        end: end of the training data (exclusive; same forms), or None.
        where: what the window belongs to, for error messages.

    Returns:
        ``(start, end)`` in the canonical UTC form of
        :func:`~manager.store.documents.values.normalise_timestamp` (strings in
        that form sort in time order, which the ``trained_by`` filters rely on),
        or ``(None, None)``: no window recorded (never matched by ``trained_by``).

    Raises:
        InvalidDocument: only one end given, an unparseable or naive time, or
            ``start`` after ``end``.
    """
    if start is None and end is None:
        return None, None
    if start is None or end is None:
        raise InvalidDocument(
            f"{where}: train_start={start!r}, train_end={end!r}; give both ends of the "
            "training window or neither"
        )
    s = normalise_timestamp(start, f"{where} train_start")
    e = normalise_timestamp(end, f"{where} train_end")
    if s > e:
        raise InvalidDocument(f"{where}: train_start {s} is after train_end {e}")
    return s, e


def check_trained_by(value: Any) -> str | None:
    """Validate a ``trained_by`` filter: None (no filter) or a moment (ISO 8601
    with a UTC offset, or an aware datetime), returned in canonical UTC form.

    Raises:
        InvalidDocument: not None and not an aware ISO 8601 time.
    """
    return None if value is None else normalise_timestamp(value, "trained_by")


def population_window(meta: dict[str, Any]) -> tuple[str | None, str | None]:
    """The training window of a population from its (prepared) meta:
    ``meta["train_start"]`` / ``meta["train_end"]``, both or neither; written
    back into ``meta`` in canonical form.

    Raises:
        InvalidDocument: see :func:`training_window`.
    """
    start, end = training_window(meta.get("train_start"), meta.get("train_end"), "population meta")
    if start is not None:
        meta["train_start"], meta["train_end"] = start, end
    return start, end


def knowledge_window(doc: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    """Market and windows of a (prepared) knowledge record, normalised in place.

    Optional keys: ``market`` (market key, non-empty str), ``train_start`` /
    ``train_end`` (both or neither) and ``data_end``: the end of all data the
    record's figures used (a cycle's out-of-sample window end; at least
    ``train_end``; default ``train_end``). ``trained_by`` filters on ``data_end``,
    because a record's out-of-sample figures are information up to it.

    Returns:
        ``(market, train_start, train_end, data_end)``, None where not recorded.

    Raises:
        InvalidDocument: a bad market, window or ``data_end``.
    """
    market = check_mode(doc.get("market"), "knowledge market")
    start, end = training_window(doc.get("train_start"), doc.get("train_end"), "knowledge record")
    data_end = doc.get("data_end")
    if data_end is not None:
        data_end = normalise_timestamp(data_end, "knowledge data_end")
        if end is None or data_end < end:
            raise InvalidDocument(
                f"knowledge data_end {data_end} needs a training window ending by it (train_end={end})")
    elif end is not None:
        data_end = end
    for key, value in (("train_start", start), ("train_end", end), ("data_end", data_end)):
        if value is not None:
            doc[key] = value
    return market, start, end, data_end


def study_window(meta: dict[str, Any]) -> tuple[str | None, str | None]:
    """Market and training-window end of a search study, from its (prepared) meta:
    ``meta["market"]`` (non-empty str) and ``meta["train_end"]`` (the end of all
    data its trials' objective used); ``train_end`` and an optional
    ``train_start`` are normalised in place (so a resume compares equal times equal).

    Raises:
        InvalidDocument: a bad market or time.
    """
    market = check_mode(meta.get("market"), "study meta market")
    if meta.get("train_start") is not None:
        meta["train_start"] = normalise_timestamp(meta["train_start"], "study meta train_start")
    end = meta.get("train_end")
    if end is not None:
        end = meta["train_end"] = normalise_timestamp(end, "study meta train_end")
    return market, end


def prepare_hall_of_fame(entries: Any, source: Any) -> tuple[list[dict[str, Any]], str]:
    """Validate a hall-of-fame version: a list of genome dicts and its source.

    Raises:
        InvalidDocument: ``entries`` not a list of dicts of JSON-able values, or
            ``source`` not a non-empty str.
    """
    items = require_list(entries, "hall of fame entries")
    docs = [
        to_document(require_mapping(e, f"entries[{i}]"), f"entries[{i}]")
        for i, e in enumerate(items)
    ]
    return docs, require_str(source, "hall of fame source")


def prepare_population(
    cycle_id: Any, genomes: Any, meta: Any
) -> tuple[str, list[dict[str, Any]], dict[str, Any], str | None, str | None]:
    """Validate a population for ``save_population``.

    Args:
        cycle_id: id of the learning cycle (rules of :func:`~manager.store.documents.values.check_id`).
        genomes: non-empty list of genome dicts of JSON-able values.
        meta: dict of JSON-able values; ``meta["mode"]`` and ``meta["market"]``,
            if present and not None, must be non-empty strs.

    Returns:
        ``(cycle_id, genomes, meta, mode, market)``: copies of the documents,
        and the mode and market key (``meta["mode"]`` / ``meta["market"]`` or
        None) the population is listed under.

    Raises:
        InvalidDocument: any of the above not met; the message names the value.
    """
    cycle_id = check_id(cycle_id, "population cycle_id")
    items = require_list(genomes, "population genomes")
    if not items:
        raise InvalidDocument(
            f"population {cycle_id!r} has no genomes; a population needs at least one"
        )
    docs = [
        to_document(require_mapping(g, f"population genomes[{i}]"), f"population.genomes[{i}]")
        for i, g in enumerate(items)
    ]
    meta_doc = to_document(require_mapping(meta, "population meta"), "population.meta")
    mode = check_mode(meta_doc.get("mode"), "population meta mode")
    market = check_mode(meta_doc.get("market"), "population meta market")
    return cycle_id, docs, meta_doc, mode, market


def prepare_knowledge(record: Any) -> dict[str, Any]:
    """Validate a knowledge record for ``save_knowledge`` and fill defaults.

    Args:
        record: dict with ``cycle_id`` (rules of :func:`~manager.store.documents.values.check_id`), ``mode``
            (non-empty str) and optional ``created_at`` (ISO 8601 with offset;
            default now). Other keys are kept as given (JSON-able values).

    Returns:
        A new dict: ``cycle_id``, ``mode``, ``created_at`` (canonical UTC), then
        the other keys.

    Raises:
        InvalidDocument: a missing or wrong-typed field, or a value that is not
            JSON-able.
    """
    require_mapping(record, "knowledge record")
    missing = [key for key in ("cycle_id", "mode") if key not in record]
    if missing:
        raise InvalidDocument(f"knowledge record is missing {missing}; required: cycle_id, mode")
    created = record.get("created_at")
    out: dict[str, Any] = {
        "cycle_id": check_id(record["cycle_id"], "knowledge cycle_id"),
        "mode": require_str(record["mode"], "knowledge mode"),
        "created_at": (
            timestamp_or_now(created, "knowledge created_at")
        ),
    }
    for key, value in record.items():
        if key not in out:
            if not isinstance(key, str):
                raise InvalidDocument(
                    f"knowledge record: key {key!r} is not a str; document keys must be str"
                )
            out[key] = to_document(value, f"knowledge.{key}")
    return out


def prepare_trial(study: Any, trial: Any) -> tuple[str, dict[str, Any]]:
    """Validate a search trial for ``save_trial``.

    Args:
        study: study name (rules of :func:`~manager.store.documents.values.check_id`).
        trial: dict with ``params`` (dict) and ``value`` (finite int/float,
            stored as float); other keys are kept as given. ``index`` and
            ``saved_at`` are set by the store and refused here.

    Returns:
        ``(study, doc)``: doc has ``params``, ``value`` first, then other keys.

    Raises:
        InvalidDocument: a missing, wrong-typed or store-set field, or a value
            that is not JSON-able.
    """
    study = check_id(study, "study")
    require_mapping(trial, "trial")
    reserved = [key for key in _STORE_SET_TRIAL_KEYS if key in trial]
    if reserved:
        raise InvalidDocument(
            f"trial has store-set keys {reserved}; the store numbers trials and "
            "stamps them, leave these out"
        )
    if "params" not in trial:
        raise InvalidDocument("trial is missing 'params'; required: params (dict), value (number)")
    out: dict[str, Any] = {
        "params": to_document(require_mapping(trial["params"], "trial params"), "trial.params"),
        "value": require_number(trial.get("value"), "trial value"),
    }
    for key, value in trial.items():
        if key not in out:
            if not isinstance(key, str):
                raise InvalidDocument(f"trial: key {key!r} is not a str; document keys must be str")
            out[key] = to_document(value, f"trial.{key}")
    return study, out


def prepare_study_meta(study: Any, meta: Any) -> tuple[str, dict[str, Any]]:
    """Validate a study's settings for ``save_study_meta``.

    Returns:
        ``(study, meta)`` with a JSON-able copy of ``meta``.

    Raises:
        InvalidDocument: bad study name, ``meta`` not a dict or not JSON-able.
    """
    study = check_id(study, "study")
    return study, to_document(require_mapping(meta, "study meta"), "study meta")


def _differences(stored: Any, given: Any, path: str) -> list[tuple[str, Any, Any]]:
    if isinstance(stored, dict) and isinstance(given, dict):
        out: list[tuple[str, Any, Any]] = []
        for key in [*stored, *(k for k in given if k not in stored)]:
            sub = f"{path}.{key}" if path else key
            out.extend(_differences(stored.get(key, MISSING), given.get(key, MISSING), sub))
        return out
    if isinstance(stored, list) and isinstance(given, list) and len(stored) == len(given):
        if all(not _differences(a, b, path) for a, b in zip(stored, given)):
            return []
        return [(path, stored, given)]
    if isinstance(stored, bool) or isinstance(given, bool):
        same = type(stored) is type(given) and stored == given
    elif isinstance(stored, (dict, list)) or isinstance(given, (dict, list)):
        same = False
    else:  # 5 and 5.0 are the same setting
        same = stored == given
    return [] if same else [(path or "meta", stored, given)]


def check_study_meta(study: str, stored: dict[str, Any], given: dict[str, Any]) -> None:
    """Compare the settings a study was started with to the ones given now.

    Values are compared as documents: dicts by key, lists item by item, ``5``
    equals ``5.0``, ``True`` does not equal ``1``.

    Raises:
        StudyMismatch: they differ; the message names every differing key path
            with the stored and the given value.
    """
    differences = _differences(stored, given, "")
    if differences:
        raise StudyMismatch(study, differences)


