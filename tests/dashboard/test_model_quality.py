"""The Models page shows live quality beside validation: per version the recorded decisions,
the matured ones, live and validation AUC, precision and hit rate, the drift figures, and a
chart of the live figures over time with the validation ones as reference lines."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.dashboard.apptest import new_app, open_page, page_text, served_on
from tests.dashboard.conftest import CHAMPION_VERSION, MODEL_NAME, Dashboard, build_mlflow_store
from tradepipe.candles import CANDLE_COLUMNS
from tradepipe.marketdata import MarketDataStore
from tradepipe.marketdata.decisions import DecisionRecord, append_decisions
from tradepipe.quality import build_reference
from tradepipe.quality_report import quality_from_evidence
from tradepipe.registry import QUALITY_REFERENCE_ARTIFACT, ModelRegistry

START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MINUTE = 60_000
ROWS = 240  # four hours of 1m candles: four points on the hourly chart
CONFIG = {
    "capital_per_trade": 100.0,
    "take_profit_pct": 0.1,
    "stop_loss_pct": 0.1,
    "max_holding_seconds": 600.0,
    "maker_order_timeout_seconds": 60.0,
    "confidence_threshold": 0.5,
}

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def write_evidence(root: Path) -> None:
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, ROWS)))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread = np.abs(rng.normal(0, 0.0008, ROWS)) * close
    frame = pd.DataFrame(
        {
            "start_ms": START_MS + np.arange(ROWS, dtype=np.int64) * MINUTE,
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": 1.0,
            "taker_buy_volume": np.nan,
            "trade_count": np.nan,
        }
    )[list(CANDLE_COLUMNS)]
    MarketDataStore(root / "market_data").write_candles("binance-live", "BTCUSDT", "1m", frame)
    features = rng.normal(size=(ROWS, 2))
    records = [
        DecisionRecord(
            decided_ms=int(start) + MINUTE,
            candle_start_ms=int(start),
            symbol="BTCUSDT",
            timeframe="1m",
            bot="alpha",
            strategy="momentum",
            strategy_hash="0" * 64,
            bot_config=json.dumps(CONFIG),
            model=MODEL_NAME,
            model_version=CHAMPION_VERSION,
            probability=float(rng.random()),
            decision="hold",
            limit_price=None,
            reason=None,
            entry=None,
            feature_spec_hash="f" * 64,
            feature_names=("a", "b"),
            feature_values=(float(features[i, 0]), float(features[i, 1])),
        )
        for i, start in enumerate(frame["start_ms"])
    ]
    append_decisions(root / "decisions", records)


@pytest.fixture
def evidence(
    dashboard: Dashboard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    store = build_mlflow_store(tmp_path / "mlflow")
    client = MlflowClient(store.tracking_uri, store.tracking_uri)
    version = client.get_model_version(MODEL_NAME, CHAMPION_VERSION)
    rng = np.random.default_rng(3)
    training = pd.DataFrame({"a": rng.normal(size=500) + 3, "b": rng.normal(size=500)})
    reference = build_reference(training, rng.random(500) > 0.5, rng.random(500), 0.5)
    client.log_text(version.run_id, reference.to_json(), QUALITY_REFERENCE_ARTIFACT)
    write_evidence(tmp_path)
    monkeypatch.setenv("TRADEPIPE_MLFLOW_TRACKING_URI", store.tracking_uri)
    monkeypatch.setenv("TRADEPIPE_MARKET_DATA_DIR", str(tmp_path / "market_data"))
    monkeypatch.setenv("TRADEPIPE_DECISION_LOG_DIR", str(tmp_path / "decisions"))
    with served_on("127.0.0.1"):
        yield tmp_path


def test_the_models_page_shows_live_quality_beside_validation(evidence: Path) -> None:
    registry = ModelRegistry(os.environ["TRADEPIPE_MLFLOW_TRACKING_URI"])
    [expected] = quality_from_evidence(
        evidence / "decisions",
        evidence / "market_data",
        "binance-live",
        registry.quality_reference,
    )
    assert expected.reference is not None and expected.quality.matured > 200
    at = open_page(new_app(), "models")
    assert not at.exception, [item.value for item in at.exception]
    text = page_text(at)
    assert "Live quality" in text
    figures = expected.quality.figures
    for shown in (
        f"{figures['auc']:.3f}",
        f"{figures['precision_at_threshold']:.3f}",
        f"{expected.reference.figures['auc']:.3f}",
        f"{expected.quality.max_feature_psi:.3f}",
        str(expected.quality.matured),
    ):
        assert shown in text, shown
    assert expected.quality.feature_psi["a"] > 1  # the reference's "a" sits 3 deviations off
    [chart] = [chart.proto.spec for chart in at.get("plotly_chart")]
    assert '"live AUC"' in chart and '"validation AUC"' in chart and '"live hit rate"' in chart
    assert len(expected.series) == 4
