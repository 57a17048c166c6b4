"""``python -m manager.cli ...``: the same commands as the ``cohortlab`` console script."""
from __future__ import annotations

import sys

from manager.cli import app

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
