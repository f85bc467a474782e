"""Fixtures of the database tests: the backends (SQLite and PostgreSQL) are
tests/db_backends.py's, shared with the dashboard tests; the seeded data is the reference
history of tests/seed_data."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from tests.seed_data import ReferenceHistory, seed_reference


@pytest.fixture
def seeded(engine: Engine) -> ReferenceHistory:
    """Two strategies, three bots and a small trading history with known PnL (see
    tests/seed_data.py)."""
    return seed_reference(engine)
