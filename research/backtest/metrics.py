"""Equity curve and metrics from an engine's fills: one computation for both engines.

An engine reports every fill as a `Fill` (the candle row it happened on, entry or exit,
side, price, quantity, fee); equity and every metric are derived here from those, so two
engines that fill identically report identical equity and metrics.

Formulas (n candles, equity e_0..e_{n-1} after each candle, initial capital C):
- equity e_t = cash_t + held quantity_t * close_t, where cash starts at C and moves by
  each fill's price * quantity (out for buys, in for sells) and fee (always out);
- per-candle returns r_t = e_t / e_{t-1} - 1, with e_{-1} = C;
- Sharpe = mean(r) / std(r, ddof 1) * sqrt(P), P = candles per year = 365 d / timeframe
  (crypto trades every day); 0 when fewer than two candles or std(r) = 0;
- Sortino = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(P) (downside deviation about 0 over
  every candle); +inf when no candle lost and mean(r) > 0, 0 when nothing moved;
- max drawdown = max_t (1 - e_t / max(C, e_0..e_t)), a positive fraction;
- win rate = trades with pnl > 0 / trades (0 without trades);
- profit factor = sum of winning pnl / -sum of losing pnl; +inf with wins and no losses,
  0 without wins;
- exposure = fraction of candles on which a position was held: from the candle its entry
  filled on through the candle it exited on (or the last candle, if still open);
- fees = every fee paid, including entry fees of positions still open.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from research.backtest.history import History
from research.backtest.records import (
    BacktestMetrics,
    BacktestResult,
    Fill,
    TradeRecord,
    UnfilledEntry,
    trade_order,
    unfilled_order,
)
from tradepipe.orders import Position

YEAR_SECONDS = 365 * 86_400


def build_result(
    history: History,
    fills: Sequence[Fill],
    trades: Sequence[TradeRecord],
    unfilled: Sequence[UnfilledEntry],
    open_positions: tuple[Position, ...],
    initial_capital: float,
) -> BacktestResult:
    """The `BacktestResult` of a finished run."""
    rows = len(history)
    # one order for every engine, so sums round alike whatever order fills were reported in
    fills = sorted(fills)
    equity, held = _equity(history, fills, initial_capital)
    ordered = tuple(sorted(trades, key=trade_order))
    metrics = _metrics(
        equity,
        ordered,
        held,
        initial_capital,
        history.timeframe.seconds,
        fees=math.fsum(fill.fee for fill in fills),
        open_positions=len(open_positions),
        unfilled=len(unfilled),
    )
    series = pd.Series(
        equity, index=pd.Index(history.start_ms[:rows], name="start_ms"), name="equity"
    )
    return BacktestResult(
        trades=ordered,
        equity=series,
        metrics=metrics,
        unfilled_entries=tuple(sorted(unfilled, key=unfilled_order)),
        fills=tuple(fills),
        open_positions=open_positions,
        initial_capital=initial_capital,
    )


def _equity(
    history: History, fills: Sequence[Fill], initial_capital: float
) -> tuple[np.ndarray, np.ndarray]:
    """(equity per candle, number of positions held per candle)."""
    rows = len(history)
    if not fills:
        return np.full(rows, initial_capital), np.zeros(rows, dtype=np.int64)
    row = np.array([fill.row for fill in fills], dtype=np.int64)
    buy = np.array([fill.is_buy for fill in fills])
    entry = np.array([fill.is_entry for fill in fills])
    notional = np.array([fill.price * fill.quantity for fill in fills])
    fee = np.array([fill.fee for fill in fills])
    quantity = np.array([fill.quantity for fill in fills])
    cash_flow = np.where(buy, -notional, notional) - fee
    cash = initial_capital + np.cumsum(np.bincount(row, weights=cash_flow, minlength=rows))
    quantity_held = np.cumsum(
        np.bincount(row, weights=np.where(buy, quantity, -quantity), minlength=rows)
    )
    opened = np.bincount(row[entry], minlength=rows + 1)
    closed = np.bincount(row[~entry] + 1, minlength=rows + 1)
    held = np.cumsum(opened - closed)[:rows]
    # a flat book holds nothing: drop the rounding residue of quantities bought and sold
    quantity_held[held == 0] = 0.0
    return cash + quantity_held * history.close, held


def _metrics(
    equity: np.ndarray,
    trades: tuple[TradeRecord, ...],
    held: np.ndarray,
    initial_capital: float,
    timeframe_seconds: int,
    *,
    fees: float,
    open_positions: int,
    unfilled: int,
) -> BacktestMetrics:
    previous = np.concatenate(([initial_capital], equity[:-1]))
    returns = equity / previous - 1.0
    periods = math.sqrt(YEAR_SECONDS / timeframe_seconds)
    mean = float(returns.mean()) if len(returns) else 0.0
    std = float(returns.std(ddof=1)) if len(returns) > 1 else 0.0
    sharpe = mean / std * periods if std > 0 else 0.0
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2))) if len(returns) else 0.0
    sortino = mean / downside * periods if downside > 0 else (math.inf if mean > 0 else 0.0)
    peaks = np.maximum.accumulate(np.concatenate(([initial_capital], equity)))
    drawdown = float(np.max(1.0 - np.concatenate(([initial_capital], equity)) / peaks))
    pnl = [trade.pnl for trade in trades]
    wins = math.fsum(p for p in pnl if p > 0)
    losses = -math.fsum(p for p in pnl if p < 0)
    profit_factor = wins / losses if losses > 0 else (math.inf if wins > 0 else 0.0)
    final = float(equity[-1]) if len(equity) else initial_capital
    return BacktestMetrics(
        total_return=final / initial_capital - 1.0,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=max(drawdown, 0.0),
        win_rate=sum(1 for p in pnl if p > 0) / len(pnl) if pnl else 0.0,
        profit_factor=profit_factor,
        exposure=float(np.mean(held > 0)) if len(held) else 0.0,
        trades=len(trades),
        fees=fees,
        open_positions=open_positions,
        unfilled_entries=unfilled,
        final_equity=final,
    )
