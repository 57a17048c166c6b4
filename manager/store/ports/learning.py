"""The learning port: the hall of fame, populations, the knowledge base, and
Bayesian-search trials and study settings. Cycle ids and study names follow
the run id rules (:func:`~manager.store.documents.values.check_id`).

**Point in time.** Every learning artefact records the training window it was
bred on (``train_start`` / ``train_end``, ISO 8601 UTC, canonical form of
:func:`~manager.store.documents.values.normalise_timestamp`), and the lookups
take ``trained_by``: only artefacts whose training data ended at or before that
moment (``train_end <= trained_by``; a knowledge record: ``data_end``, a
study: its meta's ``train_end``). Artefacts stored without a window (before
migration 0006) never match a ``trained_by`` filter.

Population (what :meth:`LearningStore.get_population` /
:meth:`LearningStore.latest_population` return; one evolved population per
learning cycle, never overwritten)::

    {
        "cycle_id": str,          # the learning cycle that bred it; unique
        "saved_at": str,          # set by the store, ISO 8601 UTC (canonical)
        "genomes": list[dict],    # at least one genome, in the order given
        "meta": dict,             # as given; meta["mode"] (str), when present,
                                  # is what latest_population(mode=...) matches,
                                  # and meta["market"] (str: the market key of
                                  # manager.seeding, e.g. "binance-5m|5m|BTC")
                                  # what latest_population(market=...) matches;
                                  # meta["train_start"] / meta["train_end"]
                                  # (ISO 8601 UTC, both or neither, canonical
                                  # on the way out) the training window that
                                  # latest_population(trained_by=...) matches
    }

Knowledge record (one per learning cycle: what was tried, what won, in- and
out-of-sample figures; :meth:`LearningStore.get_knowledge`)::

    {
        "cycle_id": str,          # unique
        "mode": str,              # e.g. "daily", "intraday"
        "created_at": str,        # ISO 8601 UTC (canonical); default: when saved
        "market": str,            # optional: the market key it was bred on
        "train_start": str,       # optional (both or neither): the training
        "train_end": str,         #   window, ISO 8601 UTC (canonical)
        "data_end": str,          # optional: end of all data its figures used
                                  #   (the out-of-sample window's end); default
                                  #   train_end; what trained_by matches
        ...                       # any further JSON-able caller keys, as given
    }

Search trial (one evaluated point of a Bayesian search ``study``;
:meth:`LearningStore.list_trials`)::

    {
        "index": int,             # set by the store: 0, 1, 2, ... within the study
        "params": dict,           # the point evaluated, name -> value
        "value": float,           # the objective at that point (lower is better)
        ...                       # any further JSON-able caller keys, as given
        "saved_at": str,          # set by the store, ISO 8601 UTC (canonical)
    }

Study listing entry (:meth:`LearningStore.list_studies`)::

    {
        "study": str,
        "trials": int,            # how many trials are stored
        "best_value": float | None,   # the smallest trial value (None: no trials)
        "updated_at": str,        # last trial saved or study meta written
        "meta": dict | None,      # as kept by save_study_meta (None: never saved)
    }
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

__all__ = ["LearningStore"]


class LearningStore(ABC):
    """Persistence port of the learning aggregate (hall of fame, populations,
    knowledge base, search trials and study settings).

    Every stored learning artefact records its market where it has one, so
    that seeding never crosses markets. Documents are copied in and out; every
    method raises :class:`~manager.store.errors.StoreError` subclasses only.
    """

    # -- hall of fame --------------------------------------------------------

    @abstractmethod
    def save_hall_of_fame(self, entries: list[dict[str, Any]], source: str,
                          market: str | None = None, *, train_start: str | None = None,
                          train_end: str | None = None) -> None:
        """Save a new version of the hall of fame (earlier versions are kept).

        Args:
            entries: genome dicts, best first.
            source: what produced it (e.g. a run id or ``"learning:2025-01-31"``).
            market: key of the market it was bred on (``manager.seeding.MarketIdentity.key``,
                e.g. ``"binance-5m|5m|BTC"``); None = unknown (never matched by a market filter).
            train_start: start of the training data it was bred on (ISO 8601
                with a UTC offset, or an aware datetime).
            train_end: end of that training data (exclusive); give both or
                neither (None = unknown: never matched by a ``trained_by`` filter).

        Raises:
            InvalidDocument: bad entries, empty source, a market that is not a
                non-empty str, or a bad window (one end only, naive, start after end).
        """

    @abstractmethod
    def latest_hall_of_fame(self, market: str | None = None,
                            trained_by: str | None = None) -> list[dict[str, Any]] | None:
        """Return the entries of the most recently saved version, or None if none.

        Args:
            market: only versions saved with this market key; None = any version.
            trained_by: only versions whose training window ended at or before
                this moment (ISO 8601 with a UTC offset); None = any version.

        Raises:
            InvalidDocument: ``market`` is neither None nor a non-empty str, or
                ``trained_by`` is not an aware ISO 8601 time.
        """

    # -- learning: populations -------------------------------------------------

    @abstractmethod
    def save_population(
        self, cycle_id: str, genomes: list[dict[str, Any]], meta: dict[str, Any]
    ) -> None:
        """Store the population a learning cycle bred (never overwritten).

        Args:
            cycle_id: id of the learning cycle (rules of :func:`~manager.store.documents.values.check_id`).
            genomes: the genomes (dicts), at least one, in the order to return them.
            meta: JSON-able dict about the population (e.g. ``mode``,
                ``generation``, ``seed``). ``meta["mode"]``, ``meta["market"]``
                (strs, when present) and ``meta["train_start"]`` /
                ``meta["train_end"]`` (the training window, both or neither)
                are what :meth:`latest_population` filters on.

        Raises:
            InvalidDocument: bad input (see :func:`~manager.store.documents.learning.prepare_population`).
            StoreError: a population with this ``cycle_id`` already exists.
        """

    @abstractmethod
    def latest_population(self, mode: str | None = None, market: str | None = None,
                          trained_by: str | None = None) -> dict[str, Any] | None:
        """Return the most recently saved population, or None if there is none.

        "Most recent" is save order (the last :meth:`save_population` call that
        succeeded), not the order of cycle ids.

        Args:
            mode: only populations whose ``meta["mode"]`` equals this str;
                ``None`` = any population.
            market: only populations whose ``meta["market"]`` equals this
                market key; ``None`` = any market.
            trained_by: only populations whose ``meta["train_end"]`` is at or
                before this moment (ISO 8601 with a UTC offset); ``None`` = any.

        Returns:
            ``{"cycle_id", "saved_at", "genomes", "meta"}`` (see the module
            docstring), or None.

        Raises:
            InvalidDocument: ``mode`` or ``market`` is neither None nor a
                non-empty str, or ``trained_by`` is not an aware ISO 8601 time.
        """

    @abstractmethod
    def get_population(self, cycle_id: str) -> dict[str, Any]:
        """Return the population saved for ``cycle_id`` (shape as :meth:`latest_population`).

        Raises:
            InvalidDocument: ``cycle_id`` is not a valid id.
            NotFound: no population was saved for this cycle.
        """

    # -- learning: knowledge base -------------------------------------------------

    @abstractmethod
    def save_knowledge(self, record: dict[str, Any]) -> str:
        """Store one learning cycle's knowledge record (never overwritten).

        Args:
            record: dict with ``cycle_id``, ``mode``, optional ``created_at``
                (default now) and any JSON-able fields (what was tried, what
                won, in- and out-of-sample figures); see :func:`~manager.store.documents.learning.prepare_knowledge`.

        Returns:
            The record's ``cycle_id``.

        Raises:
            InvalidDocument: bad record.
            StoreError: a record with this ``cycle_id`` already exists.
        """

    @abstractmethod
    def list_knowledge(
        self, limit: int = 50, before: str | None = None, mode: str | None = None,
        market: str | None = None, trained_by: str | None = None,
    ) -> list[dict[str, Any]]:
        """List knowledge records newest first (``created_at``, then ``cycle_id``, descending).

        Keyset pagination as in ``RunStore.list_runs``: pass the ``cycle_id`` of the
        last record of a page as ``before`` to get the next page; pages neither
        skip nor repeat records when new ones arrive between calls.

        Args:
            limit: page size, 1 to :data:`~manager.store.documents.values.MAX_LIST_LIMIT`.
            before: cursor cycle id; only records strictly after it in the
                listing order. It need not match ``mode``. ``None`` = from the newest.
            mode: only records with this ``mode``; ``None`` = all.
            market: only records with this ``market`` key; ``None`` = all.
            trained_by: only records whose ``data_end`` (all data their figures
                used) is at or before this moment (ISO 8601 with a UTC offset);
                ``None`` = all.

        Raises:
            InvalidDocument: bad ``limit``, ``before``, ``mode``, ``market`` or ``trained_by``.
            NotFound: ``before`` names no record.
        """

    @abstractmethod
    def get_knowledge(self, cycle_id: str) -> dict[str, Any]:
        """Return the knowledge record of ``cycle_id`` as stored.

        Raises:
            InvalidDocument: ``cycle_id`` is not a valid id.
            NotFound: no record for this cycle.
        """

    # -- learning: search trials ----------------------------------------------------

    @abstractmethod
    def save_trial(self, study: str, trial: dict[str, Any]) -> int:
        """Append one evaluated point to a search study, atomically.

        Trials of a study are numbered 0, 1, 2, ... in the order they are saved,
        without gaps, also when several processes or threads append to the same
        study (each call gets its own index) and across reopening the store, so
        a search can resume where it stopped by replaying :meth:`list_trials`.

        Args:
            study: study name (rules of :func:`~manager.store.documents.values.check_id`); created by its first trial.
            trial: dict with ``params`` (dict) and ``value`` (finite number; lower
                is better), other JSON-able keys kept; see :func:`~manager.store.documents.learning.prepare_trial`.

        Returns:
            The trial's 0-based index within the study.

        Raises:
            InvalidDocument: bad study name or trial; nothing stored.
        """

    @abstractmethod
    def list_trials(self, study: str) -> list[dict[str, Any]]:
        """Return the study's trials in index order, each with ``index`` and
        ``saved_at`` added (shape in the module docstring); ``[]`` for a study
        with no trials.

        Raises:
            InvalidDocument: bad study name.
        """

    @abstractmethod
    def list_studies(self, market: str | None = None,
                     trained_by: str | None = None) -> list[dict[str, Any]]:
        """Return one entry per study that has trials or meta, most recently
        updated first (then by name): ``study``, ``trials`` (count),
        ``best_value`` (smallest value, None without trials), ``updated_at``
        and ``meta`` (None if never saved); see the module docstring.

        Args:
            market: only studies whose meta's ``market`` equals this key; None = all.
            trained_by: only studies whose meta's ``train_end`` (the end of all
                data their trials used) is at or before this moment; None = all.
                Studies without that meta never match a filter.

        Raises:
            InvalidDocument: ``market`` or ``trained_by`` malformed.
        """

    @abstractmethod
    def save_study_meta(
        self, study: str, meta: dict[str, Any], *, replace: bool = False
    ) -> None:
        """Keep the search space and settings of a study, to check a resume.

        The first call stores ``meta``. Later calls with equal meta (compared as
        in :func:`~manager.store.documents.learning.check_study_meta`) change nothing; with different meta they
        raise :class:`~manager.store.errors.StudyMismatch`, unless ``replace=True``, which overwrites.

        Args:
            study: study name (rules of :func:`~manager.store.documents.values.check_id`).
            meta: JSON-able dict, e.g. ``{"space": {...}, "objective": "...",
                "n_initial_points": 10, "seed": 7}``; ``market`` (str) and
                ``train_end`` (ISO 8601 UTC: the end of all data the trials'
                objective uses) are what :meth:`list_studies` filters on.
            replace: overwrite differing meta instead of raising.

        Raises:
            InvalidDocument: bad study name or meta.
            StudyMismatch: meta differs from the stored one (and not ``replace``);
                nothing changed.
        """

    @abstractmethod
    def get_study_meta(self, study: str) -> dict[str, Any] | None:
        """Return the meta kept for ``study``, or None if none was saved.

        Raises:
            InvalidDocument: bad study name.
        """

