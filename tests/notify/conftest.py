"""Fixtures of the notification tests: a migrated SQLite trading database, a strategies
folder (tests/engine's), one real MLflow store per session for model swaps."""

from __future__ import annotations

import pytest

from tests.engine.conftest import database_url, strategies_dir  # noqa: F401 - shared fixtures
from tests.engine.model_store import ModelStore


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    return ModelStore.under(tmp_path_factory.mktemp("notify_mlflow_store"))
