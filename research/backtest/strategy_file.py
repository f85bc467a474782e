"""A backtest of one strategy file on one data reference, to one result (`tradepipe backtest`).

The command line (`app/cli/research.py`) parses its options and calls
`backtest_strategy_file`; every input a user can get wrong is checked here and refused with
one message naming it: a strategy file that does not load (`StrategyLoadError`, file:line),
parameters that are not a JSON object or do not validate (`BacktestError`,
`StrategyParameterError`), data that cannot be read (`SourceError`) or is too short for the
strategy's features (`BacktestError`).

Loading a model is not done here (the registry is its own module): the caller turns a
`model_uri` into `predict`, a function from the feature frame to one probability per row,
and `model_uri` is recorded on every order as the model version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.backtest.engine import DEFAULT_FEES, run_backtest
from research.backtest.errors import BacktestError
from research.backtest.records import BacktestResult
from research.marketdata.load import load_candles
from tradepipe.botconfig import BotConfig
from tradepipe.features import FeatureSpec, compute_features, default_spec
from tradepipe.marketdata.store import MarketDataStore
from tradepipe.orders import FeeSchedule
from tradepipe.strategy import load_strategy
from tradepipe.timeframes import Timeframe

__all__ = ["backtest_strategy_file", "default_config"]

Predict = Callable[[pd.DataFrame], npt.ArrayLike]
ENGINES = ("fast", "backtrader")


def default_config(timeframe: Timeframe) -> BotConfig:
    """The bot config a backtest uses when given none: 1,000 quote per trade, take-profit
    2 %, stop-loss 1 %, held at most 48 candles, limit entries waiting 3 candles."""
    return BotConfig(
        capital_per_trade=1_000.0,
        take_profit_pct=2.0,
        stop_loss_pct=1.0,
        max_holding_seconds=48 * timeframe.seconds,
        maker_order_timeout_seconds=3 * timeframe.seconds,
    )


def backtest_strategy_file(
    strategy_file: Path,
    data: str,
    *,
    engine: Literal["fast", "backtrader"] = "fast",
    params_json: str | None = None,
    model_uri: str | None = None,
    store: MarketDataStore,
    timeframe: str | None = None,
    config: BotConfig | None = None,
    predict: Predict | None = None,
    feature_spec: FeatureSpec | None = None,
    fees: FeeSchedule = DEFAULT_FEES,
    initial_capital: float | None = None,
) -> BacktestResult:
    """Backtest the strategy in `strategy_file` on `data` (a candle file or a store key
    `exchange/SYMBOL/timeframe`, see `research.marketdata.load`). Features follow
    `feature_spec` (a model's own spec) or the default spec."""
    if engine not in ENGINES:
        raise BacktestError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    loaded = load_strategy(strategy_file)  # StrategyLoadError says file:line and why
    strategy = loaded.create(parse_parameters(params_json))
    if model_uri is not None and predict is None:
        raise BacktestError(f"model {model_uri!r} given, but no way to load it was passed")
    if loaded.cls.model is not None and predict is None:
        raise BacktestError(
            f"strategy {loaded.name} consumes model {loaded.cls.model.uri}: give a model "
            "to backtest it with"
        )
    candles = load_candles(data, store=store, timeframe=timeframe)  # SourceError
    features = compute_features(candles.candles, feature_spec or default_spec())
    probabilities = None if predict is None else _predicted(predict, features)
    run = run_backtest
    if engine == "backtrader":  # imported only when asked for: backtrader is slow to import
        from research.backtest.backtrader_adapter import run_backtrader

        run = run_backtrader
    return run(
        candles.candles,
        strategy,
        config or default_config(candles.timeframe),
        symbol=candles.symbol,
        timeframe=candles.timeframe,
        features=features,
        probabilities=probabilities,
        fees=fees,
        strategy_hash=loaded.content_hash,
        model_version=model_uri,
        initial_capital=initial_capital,
    )


def parse_parameters(params_json: str | None) -> dict[str, Any]:
    if params_json is None:
        return {}
    try:
        parameters = json.loads(params_json)
    except json.JSONDecodeError as error:
        raise BacktestError(f"strategy parameters are not valid JSON: {error}") from None
    if not isinstance(parameters, dict):
        raise BacktestError(
            f'strategy parameters must be a JSON object such as {{"limit_offset_pct": 0.1}}, '
            f"not {params_json!r}"
        )
    return parameters


def _predicted(predict: Predict, features: pd.DataFrame) -> npt.NDArray[np.float64]:
    """One probability per candle from the model (NaN where it has none)."""
    try:
        values = np.asarray(predict(features), dtype=np.float64)
    except Exception as error:
        raise BacktestError(
            f"the model failed to predict: {type(error).__name__}: {error}"
        ) from error
    if values.ndim == 2 and values.shape[1] == 2:
        values = values[:, 1]  # a classifier's [P(no), P(yes)] columns
    return values
