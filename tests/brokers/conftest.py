"""Fixtures of the broker tests (helpers in tests/brokers/helpers.py)."""

from __future__ import annotations

import pytest

from tests.brokers.helpers import Aio


@pytest.fixture
def aio() -> Aio:
    return Aio()
