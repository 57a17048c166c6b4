"""Fixtures of the deployment tests: the parsed compose file and its services."""
from __future__ import annotations

import pytest

from tests.deploy.deploy_files import _compose


@pytest.fixture(scope="module")
def compose() -> dict:
    return _compose()


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]
