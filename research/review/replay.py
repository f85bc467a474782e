"""The backtest side of a review: one segment's candles through `run_backtest` with the
strategy and model versions that were live, recording the strategy's answer per candle."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from research.backtest import BacktestResult, run_backtest
from research.review.compare import DecisionAnswer
from research.review.positions import ReviewedPosition, entry_candle
from tradepipe.botconfig import BotConfig, parse_bot_config
from tradepipe.orders import FeeSchedule
from tradepipe.registry import LoadedModel
from tradepipe.strategy import DecisionContext, Enter, Exit, load_strategy_source
from tradepipe.timeframes import parse_timeframe

__all__ = ["SegmentReplay", "batch_probabilities", "replay_segment"]


@dataclass(frozen=True)
class SegmentReplay:
    result: BacktestResult
    answers: dict[int, DecisionAnswer]  # by candle start
    open_positions: dict[int, int]  # positions the strategy saw open, by candle start
    positions: list[ReviewedPosition]


# the order role that carries each exit reason (tradepipe.orders.transitions.exit_role)
_EXIT_ROLES = {
    "take_profit": "take_profit",
    "stop_loss": "stop_loss",
    "trailing_stop": "stop_loss",
    "strategy": "market_exit",
}


def batch_probabilities(model: LoadedModel, features: pd.DataFrame) -> pd.Series:
    """The model's probability on every candle whose features are all defined (NaN else)."""
    names = list(model.feature_names) or list(features.columns)
    frame = features[names]
    ready = ~frame.isna().any(axis=1)
    values = np.full(len(frame), np.nan)
    if ready.any():
        values[ready.to_numpy()] = model.predict_proba(frame[ready].reset_index(drop=True))
    return pd.Series(values, index=features.index)


def _recording(
    on_candle: Callable[[DecisionContext], Enter | Exit | None],
    answers: dict[int, DecisionAnswer],
    held: dict[int, int],
) -> Callable[[DecisionContext], Enter | Exit | None]:
    def recorded(context: DecisionContext) -> Enter | Exit | None:
        decision = on_candle(context)
        start_ms = context.candle.start_ms
        held[start_ms] = len(context.open_positions)
        if isinstance(decision, Enter):
            answers[start_ms] = DecisionAnswer("enter", decision.limit_price)
        elif isinstance(decision, Exit):
            answers[start_ms] = DecisionAnswer("exit")
        else:
            answers[start_ms] = DecisionAnswer("hold")
        return decision

    return recorded


def replay_segment(
    candles: pd.DataFrame,
    features: pd.DataFrame,
    probabilities: pd.Series | None,
    *,
    source: bytes,
    strategy_name: str,
    strategy_hash: str,
    bot_config: str,
    symbol: str,
    timeframe: str,
    model_version: str | None,
    fees: FeeSchedule,
) -> SegmentReplay:
    """Backtest `candles` (row-aligned `features`, `probabilities`) with the strategy
    built from `source` and the bot config as it was (JSON)."""
    loaded = load_strategy_source(source, Path("recorded") / f"{strategy_name}.py")
    config: BotConfig = parse_bot_config(json.loads(bot_config))
    strategy = loaded.create(config.strategy_parameters)
    answers: dict[int, DecisionAnswer] = {}
    held: dict[int, int] = {}
    # the instance attribute shadows the class's method: the backtester calls it per candle
    strategy.on_candle = _recording(strategy.on_candle, answers, held)  # type: ignore[method-assign,assignment]
    result = run_backtest(
        candles.reset_index(drop=True),
        strategy,
        config,
        symbol=symbol,
        timeframe=timeframe,
        features=features.reset_index(drop=True),
        probabilities=None if probabilities is None else probabilities.to_numpy(),
        fees=fees,
        strategy_hash=strategy_hash,
        model_version=model_version,
    )
    step = parse_timeframe(timeframe).milliseconds
    entries = [(start + step, start) for start, a in sorted(answers.items()) if a.kind == "enter"]
    positions = _positions(result, config, answers, entries, candles, step)
    return SegmentReplay(result, answers, held, positions)


# The candle (start, end) in which a fill at (time, role, price) happened, if it did.
FillWindow = Callable[[int, str, float], tuple[int, int] | None]


def _positions(
    result: BacktestResult,
    config: BotConfig,
    answers: dict[int, DecisionAnswer],
    entries: list[tuple[int, int]],
    candles: pd.DataFrame,
    step: int,
) -> list[ReviewedPosition]:
    starts = candles["start_ms"].astype("int64").tolist()
    fills = {(f.time_ms, f.role, f.price): f for f in result.fills}

    def window(time_ms: int, role: str, price: float) -> tuple[int, int] | None:
        fill = fills.get((time_ms, role, price))
        return None if fill is None else (starts[fill.row], starts[fill.row] + step)

    found = [
        *_traded(result, config, answers, entries, window),
        *_unfilled(result, entries),
        *_still_open(result, entries, window),
    ]
    return sorted(found, key=lambda p: p.entry_candle_ms)


def _traded(
    result: BacktestResult,
    config: BotConfig,
    answers: dict[int, DecisionAnswer],
    entries: list[tuple[int, int]],
    window: FillWindow,
) -> list[ReviewedPosition]:
    """The backtest's closed trades."""
    market = "market"
    tp, sl = config.take_profit_pct / 100, config.stop_loss_pct / 100
    found: list[ReviewedPosition] = []
    for trade in result.trades:
        candle = entry_candle(trade.entry_time_ms, entries)
        if candle is None:
            continue
        role = _EXIT_ROLES.get(trade.exit_reason, "timeout_exit")
        answer = answers.get(candle)
        entry_type = market if answer is None or answer.limit_price is None else "limit"
        found.append(
            ReviewedPosition(
                entry_candle_ms=candle,
                entry_type=entry_type,
                entry_price=trade.entry_price,
                entry_time_ms=trade.entry_time_ms,
                exit_reason=trade.exit_reason,
                exit_price=trade.exit_price,
                exit_time_ms=trade.exit_time_ms,
                exit_type="limit" if trade.exit_reason == "take_profit" else market,
                take_profit_price=trade.entry_price * (1 + tp),
                stop_loss_price=trade.entry_price * (1 - sl),
                entry_window=window(trade.entry_time_ms, "entry", trade.entry_price),
                exit_window=window(trade.exit_time_ms, role, trade.exit_price),
                label="backtest",
            )
        )
    return found


def _unfilled(result: BacktestResult, entries: list[tuple[int, int]]) -> list[ReviewedPosition]:
    """The backtest's limit entries that were cancelled unfilled."""
    found: list[ReviewedPosition] = []
    for unfilled in result.unfilled_entries:
        candle = entry_candle(unfilled.placed_at_ms, entries)
        if candle is not None:
            found.append(
                ReviewedPosition(
                    entry_candle_ms=candle,
                    entry_type="limit",
                    entry_price=None,
                    entry_time_ms=None,
                    exit_reason=unfilled.reason,
                    exit_price=None,
                    exit_time_ms=unfilled.cancelled_at_ms,
                    label="backtest",
                )
            )
    return found


def _still_open(
    result: BacktestResult, entries: list[tuple[int, int]], window: FillWindow
) -> list[ReviewedPosition]:
    """The backtest's positions still open at the end of the range."""
    found: list[ReviewedPosition] = []
    for position in result.open_positions:
        candle = entry_candle(position.entry.placed_at_ms, entries)
        if candle is None:
            continue
        price, opened = position.entry_price, position.opened_at_ms
        found.append(
            ReviewedPosition(
                entry_candle_ms=candle,
                entry_type=position.entry.order_type.value,
                entry_price=price,
                entry_time_ms=opened,
                exit_reason=None,
                exit_price=None,
                exit_time_ms=None,
                take_profit_price=position.take_profit_price,
                stop_loss_price=position.stop_loss_price,
                entry_window=(
                    window(opened, "entry", price)
                    if opened is not None and price is not None
                    else None
                ),
                label="backtest",
            )
        )
    return found
