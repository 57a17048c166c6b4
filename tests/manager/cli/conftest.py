"""Fixtures of the ``cohortlab`` command-line tests: a SQLite store per test and an
in-process invoker of the commands."""
from __future__ import annotations

from typing import Callable

import pytest
from click.testing import Result
from typer.testing import CliRunner

from manager.cli import app


@pytest.fixture
def store_url(tmp_path) -> str:
    """A fresh SQLite store in the test's temporary folder."""
    return f"sqlite:///{tmp_path / 'runs.db'}"


@pytest.fixture
def cli() -> Callable[..., Result]:
    """``cli(*args, store_url=None)``: run ``cohortlab *args`` in process (``--store store_url``
    appended when given); exceptions other than the exit propagate."""
    runner = CliRunner()

    def invoke(*args, store_url: str | None = None) -> Result:
        argv = [str(a) for a in args]
        if store_url:
            argv += ["--store", store_url]
        return runner.invoke(app, argv, catch_exceptions=False)

    return invoke
