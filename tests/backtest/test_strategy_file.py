"""`backtest_strategy_file`: a strategy file and a data reference in, a result or one clear
error out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.backtest import BacktestError
from research.backtest.strategy_file import backtest_strategy_file, default_config
from research.marketdata import IngestRequest, ingest
from research.marketdata.errors import SourceError
from tradepipe.marketdata import MarketDataStore
from tradepipe.strategy import StrategyLoadError, StrategyParameterError
from tradepipe.timeframes import parse_timeframe

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
START_MS = 1_704_067_200_000  # 2024-01-01
DAY_MS = 86_400_000
EMA_RSI = STRATEGIES / "ema_rsi.py"
LGBM = STRATEGIES / "lgbm_threshold.py"
SERIES = "synthetic/BTCUSDT/1h"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> MarketDataStore:
    store = MarketDataStore(tmp_path_factory.mktemp("md"))
    request = IngestRequest(
        "synthetic", None, "BTCUSDT", "1h", None, START_MS, START_MS + 40 * DAY_MS
    )
    ingest(store, request)
    ingest(
        store, IngestRequest("synthetic", None, "ETHUSDT", "1h", None, START_MS, START_MS + DAY_MS)
    )
    return store


def test_a_strategy_file_on_a_store_key_in_both_engines(store: MarketDataStore) -> None:
    fast = backtest_strategy_file(
        EMA_RSI, SERIES, store=store, params_json='{"rsi_entry_below": 50}'
    )
    assert len(fast.equity) == 40 * 24 and len(fast.trades) > 5
    reference = backtest_strategy_file(
        EMA_RSI, SERIES, engine="backtrader", store=store, params_json='{"rsi_entry_below": 50}'
    )
    assert reference.trades == fast.trades and reference.metrics == fast.metrics


def test_the_default_config_scales_with_the_timeframe() -> None:
    config = default_config(parse_timeframe("1h"))
    assert config.max_holding_seconds == 48 * 3_600
    assert config.maker_order_timeout_seconds == 3 * 3_600


def test_a_model_strategy_takes_the_models_predictions(store: MarketDataStore) -> None:
    seen: list[pd.DataFrame] = []

    def predict(features: pd.DataFrame) -> np.ndarray:
        seen.append(features)
        return np.column_stack([np.full(len(features), 0.1), np.full(len(features), 0.9)])

    result = backtest_strategy_file(
        LGBM, SERIES, store=store, predict=predict, model_uri="models:/m@champion"
    )
    assert len(seen[0]) == 40 * 24 and "rsi_14" in seen[0].columns
    assert len(result.trades) > 5  # a confident model: the strategy enters whenever it can


def test_a_model_strategy_without_a_model_is_refused(store: MarketDataStore) -> None:
    with pytest.raises(BacktestError, match="consumes model models:/btcusdt_1m_triple_barrier"):
        backtest_strategy_file(LGBM, SERIES, store=store)
    with pytest.raises(BacktestError, match="model 'models:/x@champion' given, but no way"):
        backtest_strategy_file(EMA_RSI, SERIES, store=store, model_uri="models:/x@champion")


def test_a_model_that_fails_is_reported(store: MarketDataStore) -> None:
    def predict(features: pd.DataFrame) -> np.ndarray:
        raise RuntimeError("wrong feature count")

    with pytest.raises(BacktestError, match="model failed to predict: RuntimeError: wrong"):
        backtest_strategy_file(LGBM, SERIES, store=store, predict=predict)


def test_a_strategy_file_that_does_not_load(store: MarketDataStore, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("from tradepipe.strategy import Strategy\nclass Oops(Strategy:\n")
    with pytest.raises(StrategyLoadError, match=r"broken\.py:2: syntax error"):
        backtest_strategy_file(broken, SERIES, store=store)
    with pytest.raises(StrategyLoadError, match="cannot read"):
        backtest_strategy_file(tmp_path / "missing.py", SERIES, store=store)


@pytest.mark.parametrize(
    ("params_json", "error", "message"),
    [
        ("{rsi: 3}", BacktestError, "strategy parameters are not valid JSON"),
        ("[1, 2]", BacktestError, "must be a JSON object"),
        ('{"rsi_entry_below": "low"}', StrategyParameterError, "rsi_entry_below"),
        ('{"unknown": 1}', StrategyParameterError, "unknown"),
    ],
)
def test_bad_parameters(
    store: MarketDataStore, params_json: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        backtest_strategy_file(EMA_RSI, SERIES, store=store, params_json=params_json)


def test_bad_data_references_and_engines(store: MarketDataStore) -> None:
    with pytest.raises(SourceError, match="no such file"):
        backtest_strategy_file(EMA_RSI, "nowhere.csv", store=store)
    with pytest.raises(SourceError, match="no such stored series"):
        backtest_strategy_file(EMA_RSI, "synthetic/DOGEUSDT/1h", store=store)
    with pytest.raises(BacktestError, match="unknown engine 'zipline'"):
        backtest_strategy_file(EMA_RSI, SERIES, store=store, engine="zipline")  # type: ignore[arg-type]


def test_data_too_short_for_the_strategys_features(store: MarketDataStore) -> None:
    with pytest.raises(BacktestError, match="data too short: 24 candles"):
        backtest_strategy_file(EMA_RSI, "synthetic/ETHUSDT/1h", store=store)
