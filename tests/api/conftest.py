"""Fixtures of the API tests: a migrated SQLite database and a strategies folder per test,
built with the engine tests' helpers (the same engine, the same bots code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.helpers import Aio, add_bots, write_strategies
from tradepipe.db import upgrade_database


@pytest.fixture
def aio() -> Aio:
    return Aio()


@pytest.fixture
def strategies_dir(tmp_path: Path) -> Path:
    return write_strategies(tmp_path / "strategies")


@pytest.fixture
def database_url(tmp_path: Path, strategies_dir: Path) -> str:
    """A database with two bots: `alpha` (always enters) and `beta` (limit entries)."""
    url = f"sqlite:///{tmp_path / 'trading.db'}"
    upgrade_database(url)
    add_bots(url, strategies_dir, [("alpha", "always"), ("beta", "always_limit")])
    return url
