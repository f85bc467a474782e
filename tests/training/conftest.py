"""Fixtures of the training tests: synthetic candles ingested once, spec files written from
one template, and MLflow stores that are real SQLite files under pytest's temporary folders.

A fresh MLflow SQLite store costs seconds (MLflow runs its own migrations), so the stores are
shared per module and every test names its models uniquely instead of starting from nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from research.marketdata import IngestRequest, ingest
from research.marketdata.load import CandleData, load_candles
from research.training import Workspace
from tests.training.helpers import END, START, SpecWriter, ms, small_spec, to_toml
from tradepipe.marketdata import MarketDataStore


@pytest.fixture(scope="session")
def market_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two weeks of synthetic BTCUSDT 1m candles in a store, ingested once per session."""
    root = tmp_path_factory.mktemp("market_data")
    ingest(
        MarketDataStore(root),
        IngestRequest("synthetic", None, "BTCUSDT", "1m", None, ms(START), ms(END)),
    )
    return root


@pytest.fixture(scope="session")
def candles(market_data: Path) -> CandleData:
    return load_candles("synthetic/BTCUSDT/1m", store=MarketDataStore(market_data))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, market_data: Path) -> Workspace:
    """A real MLflow SQLite store, artifact root and trading database for one module."""
    root = tmp_path_factory.mktemp("workspace")
    base = Workspace.under(root)
    return Workspace(base.tracking_uri, base.artifact_root, base.database_url, market_data)


@pytest.fixture
def write_spec(tmp_path: Path) -> SpecWriter:
    """write_spec(name="x", **changes) -> path of a small spec file in the test's folder."""

    def write(file_name: str = "spec.toml", **changes: Any) -> Path:
        path = tmp_path / file_name
        path.write_text(to_toml(small_spec(**changes)))
        return path

    return write
