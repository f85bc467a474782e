"""Fixtures of the engine tests (helpers in tests/engine/helpers.py): a migrated SQLite
database per test, a strategies folder, the bounded asyncio runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.helpers import Aio, write_strategies
from tests.engine.model_store import ModelStore
from tests.support import fresh_pg_database
from tradepipe.db import upgrade_database


@pytest.fixture
def aio() -> Aio:
    return Aio()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'trading.db'}"
    upgrade_database(url)
    return url


@pytest.fixture
def strategies_dir(tmp_path: Path) -> Path:
    return write_strategies(tmp_path / "strategies")


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """One real MLflow store per session (creating one costs seconds); tests name their
    models apart."""
    return ModelStore.under(tmp_path_factory.mktemp("mlflow_store"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database (TRADEPIPE_TEST_PG_URL's server), migrated, dropped at
    the end; skips when the server is not reachable (CI makes that a failure)."""
    with fresh_pg_database("tradepipe_engine") as database:
        url = database.render_as_string(hide_password=False)
        upgrade_database(url)
        yield url
