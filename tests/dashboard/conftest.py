"""Fixtures of the dashboard tests: the database backends of tests/db_backends.py (SQLite
and PostgreSQL), the recent history of tests/seed_data, candles in a market data store, an MLflow
registry, and the TRADEPIPE_* environment that points the dashboard at all of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from tests.seed_data import (
    DATA_FINGERPRINT,
    FEATURE_SPEC_HASH,
    MOMENTUM_HASH,
    RecentHistory,
    seed_recent,
)
from tradepipe.marketdata import MarketDataStore

MODEL_NAME = "btc-lgbm"
CHAMPION_VERSION = "3"


@pytest.fixture
def seeded(engine: Engine) -> RecentHistory:
    return seed_recent(engine, datetime.now(UTC).replace(microsecond=0))


def write_candles(root: Path, now: datetime) -> int:
    """alpha's BTCUSDT 1m candles over the last 26 hours, oscillating around 103."""
    step_ms = 60_000
    end_ms = int(now.timestamp() * 1000) // step_ms * step_ms
    starts = np.arange(end_ms - 26 * 60 * step_ms, end_ms + step_ms, step_ms, dtype=np.int64)
    phase = np.arange(len(starts)) / 45.0
    close = 103.0 + 2.0 * np.sin(phase)
    open_ = np.concatenate([[close[0]], close[:-1]])
    frame = pd.DataFrame(
        {
            "start_ms": starts,
            "open": open_,
            "high": np.maximum(open_, close) + 0.15,
            "low": np.minimum(open_, close) - 0.15,
            "close": close,
            "volume": 5.0 + np.cos(phase) ** 2,
        }
    )
    return MarketDataStore(root).write_candles("binance", "BTCUSDT", "1m", frame).rows_total


@dataclass(frozen=True)
class MlflowStore:
    tracking_uri: str
    path: Path


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> MlflowStore:
    """An MLflow registry holding btc-lgbm versions 1-4, version 3 the champion; built once
    per session (MLflow's import and schema creation take seconds). Tests that move its
    aliases build their own with `build_mlflow_store`."""
    return build_mlflow_store(tmp_path_factory.mktemp("mlflow"))


def build_mlflow_store(root: Path) -> MlflowStore:
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("training", artifact_location=str(root / "artifacts"))
    client.create_registered_model(MODEL_NAME, description="BTCUSDT 1m direction classifier")
    for version, sharpe in enumerate((0.7, 1.1, 1.4, 0.9), start=1):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "sharpe", sharpe)
        client.log_metric(run.info.run_id, "auc", 0.5 + sharpe / 10)
        client.set_tag(run.info.run_id, "feature_spec_hash", FEATURE_SPEC_HASH)
        client.log_param(run.info.run_id, "strategy_hash", MOMENTUM_HASH)
        client.set_terminated(run.info.run_id)
        client.create_model_version(
            MODEL_NAME,
            source=f"runs:/{run.info.run_id}/model",
            run_id=run.info.run_id,
            tags={"data_fingerprint": f"{DATA_FINGERPRINT}-v{version}"},
        )
    client.set_registered_model_alias(MODEL_NAME, "champion", CHAMPION_VERSION)
    client.set_registered_model_alias(MODEL_NAME, "challenger", "4")
    return MlflowStore(uri, root / "mlflow.db")


@dataclass(frozen=True)
class Dashboard:
    """A seeded database plus what the dashboard process needs to find it."""

    database_url: str
    seeded: RecentHistory
    env: dict[str, str]


@pytest.fixture
def dashboard(
    database_url: str,
    seeded: RecentHistory,
    tmp_path: Path,
    mlflow_store: MlflowStore,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Dashboard]:
    """The seeded database, candles and MLflow registry, named by TRADEPIPE_* variables."""
    market_data = tmp_path / "market_data"
    write_candles(market_data, seeded.now)
    env = {
        "TRADEPIPE_HOME": str(tmp_path / "var"),
        "TRADEPIPE_DATABASE_URL": database_url,
        "TRADEPIPE_MARKET_DATA_DIR": str(market_data),
        "TRADEPIPE_MLFLOW_TRACKING_URI": mlflow_store.tracking_uri,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield Dashboard(database_url, seeded, env)
