"""Fixtures of the broker tests (helpers in tests/brokers/helpers.py); the engine tests'
database and strategies folder serve the testnet engine test."""

from __future__ import annotations

import pytest

from tests.brokers.helpers import Aio
from tests.engine.conftest import database_url, strategies_dir

__all__ = ["database_url", "strategies_dir"]


@pytest.fixture
def aio() -> Aio:
    return Aio()
