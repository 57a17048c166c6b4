"""A store holding the shared 3-day promotion campaign (:mod:`tests.promotion_campaign`) for the
API and dashboard tests of Day-3 promotion (not fixtures): built once per session into a
template file, copied for every test that changes it.

The API and the dashboard review with ``COHORTLAB_PROMOTER`` (:data:`PROMOTER_ENV`): the
campaign's ``RELAXED`` settings, under which agent ``a06`` passes every guard rail."""
from __future__ import annotations

import json
import shutil
from functools import lru_cache
from pathlib import Path

from manager.store import open_store
from tests.promotion_campaign import BEST, RELAXED, run

__all__ = ["BEST", "PROMOTER_ENV", "RELAXED", "Campaign", "build", "copy_to"]

PROMOTER_ENV = {"COHORTLAB_PROMOTER": json.dumps(RELAXED.to_dict())}
"""Environment of a server or app that reviews under ``RELAXED``."""


class Campaign:
    """The stored campaign: ``path`` (the template SQLite file), ``campaign_id``, ``run_ids``
    (days 1..3) and ``report``."""

    def __init__(self, path: Path, report: dict) -> None:
        self.path, self.report = path, report
        self.campaign_id = report["campaign_id"]
        self.run_ids = [d["run_id"] for d in report["days"]]

    @property
    def day3(self) -> str:
        return self.run_ids[2]


@lru_cache(maxsize=None)
def build(folder: Path) -> Campaign:
    """Run the campaign into ``folder/campaign.db`` (once per folder)."""
    path = folder / "campaign.db"
    with open_store(f"sqlite:///{path}") as store:
        report = run(store)
    return Campaign(path, report)


def copy_to(campaign: Campaign, path: Path) -> str:
    """A copy of the campaign's store at ``path``; returns its URL."""
    shutil.copy(campaign.path, path)
    return f"sqlite:///{path}"
