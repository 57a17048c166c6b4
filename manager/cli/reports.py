"""``cohortlab report RUN_ID|daily``: the cohort and daily reports as CSV or PDF (issue 15).

A thin adapter over :mod:`manager.reports`:

- ``cohortlab report RUN_ID --format csv|pdf [--out FILE]``: one cohort run's report;
- ``cohortlab report daily --date YYYY-MM-DD --format csv|pdf [--out FILE]``: every
  cohort that traded that UTC day.

Without ``--out`` the file is ``report-RUN_ID.FMT`` / ``report-daily-DATE.FMT`` in the
current folder. Exit status 2 for an unknown run, a bad date or format, a store error,
or a PDF without WeasyPrint (the message says ``pip install cohortlab[reports]``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from manager import reports as R
from manager.cli.options import STORE, open_store_or_exit
from manager.cli.output import USER_ERRORS, fail, say

__all__ = ["report"]


def report(
    target: str = typer.Argument(..., metavar="RUN_ID|daily",
                                 help="A cohort run id, or `daily` for the daily report of --date."),
    date: Optional[str] = typer.Option(None, "--date", help="The UTC day of the daily report (YYYY-MM-DD)."),
    fmt: str = typer.Option("pdf", "--format", help="csv (one CSV, a `section` column per row) or pdf."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the report here (default: report-<id>.<format>)."),
    store_url: Optional[str] = STORE,
) -> None:
    """Write a cohort report (RUN_ID) or the daily report (`daily --date D`) as CSV or PDF:
    hourly PnL, leverage decisions, bankroll, baselines, promotions, rollback incidents,
    commentary and compliance notes."""
    with open_store_or_exit(store_url) as store:
        try:
            if fmt not in R.FORMATS:
                raise R.ReportError(f"--format {fmt!r} must be one of {', '.join(R.FORMATS)}")
            if target == "daily":
                if not date:
                    raise R.ReportError("report daily needs --date YYYY-MM-DD")
                day = R.parse_day(date).isoformat()
                view, default = R.daily_report_view(store, day), f"report-daily-{day}.{fmt}"
            else:
                if date:
                    raise R.ReportError("--date applies to `report daily` only")
                view, default = R.cohort_report_view(store, target), f"report-{target}.{fmt}"
            data = R.report_bytes(view, fmt)
        except (R.ReportError, R.ReportsUnavailable, *USER_ERRORS) as exc:
            fail(exc)
    path = out or Path(default)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    say(f"{view['title']}: {len(view['runs'])} run(s), {len(view['hourly'])} hours, "
        f"{len(view['decisions'])} leverage decisions -> {path}")
