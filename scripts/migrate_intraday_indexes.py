#!/usr/bin/env python
"""Apply the store's pending schema migrations (indexes of the intraday collections
and the others the store uses); idempotent: a second run applies nothing.

Same as ``cohortlab migrate``. Exit status 0 on success, 2 on a store error.

Usage: python scripts/migrate_intraday_indexes.py [--store URL] [--status]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from manager.store import StoreError  # noqa: E402
from migrations import format_status, migrate_url  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=None,
                    help="store URL, e.g. mongodb://localhost:27017/cohortlab "
                         "(default: $COHORTLAB_STORE, else sqlite:///./cohortlab.db)")
    ap.add_argument("--status", action="store_true", help="only report; apply nothing")
    args = ap.parse_args(argv)
    try:
        applied, rows = migrate_url(args.store, status_only=args.status)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in format_status(rows):
        print(line)
    if not args.status:
        print(f"applied: {', '.join(applied)}" if applied else "nothing to apply; the store is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
