"""Backtesting the consuming strategy on a window of candles with a model's probabilities.

What decides promotion is not AUC but what the bot would have made: the strategy file named
by the spec runs in the project's backtester (the same order state machine as live) with the
spec's bot config, fed one probability per candle by the model under test. Candidate and
champion go through this same function on the same candles, each with features computed by
its own feature spec over the whole history (so the window's first candles are past warm-up).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.backtest import BacktestError, BacktestMetrics, run_backtest
from research.training.dataset import Dataset
from research.training.errors import ResearchError, SpecError
from research.training.spec import ModelSpec
from research.training.splits import IntArray, Split, holdout_split
from tradepipe.costs import TradingCosts
from tradepipe.features import FeatureSpec, compute_features
from tradepipe.strategy import (
    LoadedStrategy,
    StrategyLoadError,
    StrategyParameterError,
    load_strategy,
)

__all__ = [
    "BACKTEST_METRICS",
    "Window",
    "backtest_figures",
    "backtest_window",
    "load_consuming_strategy",
    "validation_split",
    "window_probabilities",
]

# The backtest figures logged and compared, in BacktestMetrics' own names.
BACKTEST_METRICS = (
    "total_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "exposure",
    "trades",
    "fees",
    "open_positions",
)

_PER_TRADE = ("sharpe", "sortino", "win_rate", "profit_factor")

FloatArray = npt.NDArray[np.float64]
Predictor = Callable[[pd.DataFrame], FloatArray]


@dataclass(frozen=True, slots=True)
class Window:
    """Candles [first, stop) of a dataset: the decision candles of a block of test rows."""

    first: int
    stop: int

    @classmethod
    def of_rows(cls, dataset: Dataset, positions: IntArray) -> Window:
        return cls(int(dataset.rows[positions[0]]), int(dataset.rows[positions[-1]]) + 1)

    def start_ms(self, dataset: Dataset) -> int:
        return int(dataset.candles["start_ms"].iloc[self.first])

    def end_ms(self, dataset: Dataset) -> int:
        last = int(dataset.candles["start_ms"].iloc[self.stop - 1])
        return last + dataset.timeframe.milliseconds


def load_consuming_strategy(spec: ModelSpec) -> LoadedStrategy:
    """The spec's strategy file, checked to consume the model the spec registers."""
    path = spec.strategy.resolved_file()
    try:
        loaded = load_strategy(path)
        loaded.create(spec.strategy.parameters)
    except (StrategyLoadError, StrategyParameterError) as error:
        raise SpecError(f"strategy.file: {error}") from None
    consumed = loaded.cls.model
    if consumed is None:
        raise SpecError(
            f"strategy.file: {path} consumes no model (no `model = ModelRef(...)`): "
            "name a strategy that reads the model's probability"
        )
    if consumed.name != spec.registered_model:
        raise SpecError(
            f"strategy.file: {path} consumes model {consumed.name!r} but the spec registers "
            f"{spec.registered_model!r}: make registered_model match"
        )
    return loaded


def validation_split(dataset: Dataset, spec: ModelSpec) -> Split:
    """The final model's split: its validation window is the newest `validation_fraction`
    of the usable rows, cut off by the purge and embargo gap; the rows before it train."""
    return holdout_split(
        dataset.start_ms,
        dataset.label_end_ms,
        spec.training.validation_fraction,
        purge_ms=round(spec.walk_forward.purge_seconds * 1000),
        embargo_ms=round(spec.walk_forward.embargo_seconds * 1000),
    )


def window_probabilities(
    dataset: Dataset, window: Window, positions: IntArray, predict: Predictor
) -> tuple[FloatArray, FloatArray]:
    """One prediction over every candle of `window`: its probabilities, and those of the
    usable rows at `positions` inside it (the test rows the window was made of). A model
    scores each row on its own, so these are the figures a call on those rows would give,
    for half the work."""
    features = dataset.features.iloc[window.first : window.stop]
    probabilities = np.asarray(predict(features), dtype=np.float64)
    return probabilities, probabilities[dataset.rows[positions] - window.first]


def backtest_window(
    dataset: Dataset,
    window: Window,
    spec: ModelSpec,
    strategy: LoadedStrategy,
    predict: Predictor | FloatArray,
    *,
    costs: TradingCosts,
    feature_spec: FeatureSpec | None = None,
    model_version: str | None = None,
) -> dict[str, float]:
    """Backtest metrics of the spec's strategy on `window`, entering on `predict`'s output
    (or on the window's probabilities, when `predict` is them: `window_probabilities`).

    `feature_spec` (default: the spec's) is the one `predict` was trained on; features are
    recomputed over the whole history when it differs from the dataset's own. `costs` are
    the step's (`StepContext.costs`: the venue's, raised by the spec's).
    """
    own = feature_spec is None or feature_spec.content_hash == spec.features.content_hash
    used_spec = spec.features if feature_spec is None else feature_spec
    features = dataset.features if own else compute_features(dataset.candles, used_spec)
    rows = slice(window.first, window.stop)
    window_features = features.iloc[rows]
    scores = predict if isinstance(predict, np.ndarray) else predict(window_features)
    probabilities = np.asarray(scores, dtype=np.float64)
    if probabilities.shape != (len(window_features),):
        raise ResearchError(
            f"model {model_version or '(candidate)'} returned {probabilities.shape} "
            f"probabilities for {len(window_features)} candles"
        )
    try:
        result = run_backtest(
            dataset.candles.iloc[rows].reset_index(drop=True),
            strategy.create(spec.strategy.parameters),
            spec.bot_config,
            symbol=spec.symbol,
            timeframe=spec.parsed_timeframe,
            features=window_features.reset_index(drop=True),
            feature_spec=used_spec,
            probabilities=probabilities,
            fees=costs.fees,
            slippage_bps=costs.slippage_bps,
            strategy_hash=strategy.content_hash,
            model_version=model_version,
        )
    except BacktestError as error:
        raise ResearchError(f"backtest of {spec.strategy.file}: {error}") from None
    return backtest_figures(result.metrics)


def backtest_figures(metrics: BacktestMetrics) -> dict[str, float]:
    """The backtest's figures as floats in BACKTEST_METRICS order, infinities kept (a profit
    factor without losing trades is infinite, which is not the same as no figure, NaN);
    the per-trade ratios are NaN when no trade closed."""
    figures = {name: float(getattr(metrics, name)) for name in BACKTEST_METRICS}
    if metrics.trades == 0:
        # Without a closed trade these describe nothing; reported as 0 they would pass a
        # "Sharpe >= 0" gate and beat a champion that lost money by trading.
        for name in _PER_TRADE:
            figures[name] = math.nan
    return figures
