"""Fixtures of the notification tests: a migrated SQLite trading database, a strategies
folder (tests/engine's), one real MLflow store per session for model swaps."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.helpers import write_strategies
from tests.engine.model_store import ModelStore
from tradepipe.db import upgrade_database


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
    return ModelStore.under(tmp_path_factory.mktemp("notify_mlflow_store"))
