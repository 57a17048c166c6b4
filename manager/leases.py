"""Run leases: who executes a ``running`` run, and the heartbeat that keeps its
lease alive (see :meth:`manager.store.ports.runs.RunStore.claim_run`).

Every process executing runs has an owner token (:func:`process_owner`,
``<host>:<pid>:<random>``, new in a forked child). A run is created with that
owner and ``lease_until`` = now + ``COHORTLAB_RUN_LEASE_S`` (default 60 s); while
it executes, a :class:`Heartbeat` thread renews the lease every third of that.
A redelivery or a restarted process takes a ``running`` run over only once its
lease has expired -- its owner died -- never while a live owner still renews it.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import Any

from manager.settings import get_settings
from manager.store import Store, StoreError
from manager.store.documents import lease_deadline

__all__ = ["Heartbeat", "lease_fields", "lease_s", "process_owner"]

log = logging.getLogger("cohortlab.leases")

_owner: tuple[int, str] | None = None
_owner_lock = threading.Lock()


def process_owner() -> str:
    """This process's owner token (stable for the process; a forked child gets its own)."""
    global _owner
    pid = os.getpid()
    with _owner_lock:
        if _owner is None or _owner[0] != pid:
            _owner = (pid, f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:12]}")
        return _owner[1]


def lease_s() -> float:
    """The lease of a running run, seconds (``COHORTLAB_RUN_LEASE_S``)."""
    return float(get_settings().run_lease_s)


def lease_fields(owner: str | None = None, seconds: float | None = None) -> dict[str, Any]:
    """``{"owner", "lease_until"}`` for a new run document (default: this process, :func:`lease_s`)."""
    return {"owner": owner or process_owner(), "lease_until": lease_deadline(seconds or lease_s())}


class Heartbeat:
    """Renews ``owner``'s lease on run ``run_id`` every ``seconds / 3`` while the
    ``with`` block runs (a daemon thread). A failed renewal is logged and
    retried at the next beat; a lost lease (another owner took over) stops it.
    """

    def __init__(self, store: Store, run_id: str, owner: str | None = None,
                 seconds: float | None = None) -> None:
        self.store, self.run_id = store, run_id
        self.owner = owner or process_owner()
        self.seconds = seconds or lease_s()
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{run_id}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.store.renew_lease(self.run_id, self.owner, self.seconds):
                    self.lost = True
                    log.warning("run %s: lease no longer held by %s; heartbeat stopped", self.run_id, self.owner)
                    return
            except StoreError:  # the store is busy or down: try again at the next beat
                log.warning("run %s: lease renewal failed", self.run_id, exc_info=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
