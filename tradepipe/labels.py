"""Triple-barrier labels, made by the same fill model the backtester and live engine trade by.

For each candle i, a strategy deciding at its close would enter at market: the position
opens at candle i+1's open with the bot's take-profit %, stop-loss % and max holding, and
exits by rules 4 and 5 of `tradepipe.orders.rules` (stop-loss wins a tie inside a candle;
gaps fill at the open; the timeout exits at the close of the first candle ending at or
after entry + max holding). The label is 1 when that exit is the take-profit, else 0.

Speed without a second implementation: numpy finds, per row, the first candle where each
barrier is touched (`stop_touched` / `take_profit_touched`, the very predicates the state
machine uses, on windows of candles) and the timeout candle (a binary search on candle
ends). The earliest of these is the only candle on which the position can exit, and there
the scalar `resolve_bar`, the state machine's own rule, decides reason and price. A test
runs `PositionBook` candle by candle on random series and compares every row.

With a trailing stop (`trailing_stop_pct`, a bot's `trailing_stop_pct` in
`labels_for_bot`), the stop of each candle is the tighter of the stop-loss and the trail
behind the best price of the candles before it (`tradepipe.orders.trailing`): a running
maximum of the highs (minimum of the lows for a short) over each row's window, bit-identical
to the state machine's ratchet. Such exits are labelled 0 with reason `trailing_stop`.

Rows without a full horizon in the data (no next candle, or no candle ending at or after
the deadline) are left unlabelled (label -1, no exit, NaN returns), even when a barrier
was touched before the data ends: labelling only the early-exit rows near the end would
bias the tail towards whichever barrier is closer.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from tradepipe.botconfig import BotConfig
from tradepipe.enums import ExitReason, Side
from tradepipe.orders.rules import barrier_prices, resolve_bar, stop_touched, take_profit_touched
from tradepipe.orders.trailing import trail_price
from tradepipe.orders.types import FeeSchedule, Liquidity, duration_ms
from tradepipe.timeframes import Timeframe, parse_timeframe

__all__ = ["LABEL_COLUMNS", "LabelInputError", "labels_for_bot", "triple_barrier_labels"]

LABEL_COLUMNS = (
    "label",  # int8: 1 take-profit first, 0 stop-loss or timeout, -1 unlabelled
    "exit_reason",  # categorical ExitReason value, NaN when unlabelled
    "exit_index",  # int64 position (iloc) of the exit candle, -1 when unlabelled
    "entry_price",  # open of candle i+1
    "exit_price",
    "exit_time_ms",  # int64, -1 when unlabelled
    "gross_return",  # (exit - entry) / entry for a long, before fees
    "net_return",  # after a taker entry and the exit's fee, as a fraction of the notional
)
_REASONS = (
    ExitReason.TAKE_PROFIT,
    ExitReason.STOP_LOSS,
    ExitReason.TIMEOUT,
    ExitReason.TRAILING_STOP,
)
_REASON_CODES = {reason: code for code, reason in enumerate(_REASONS)}
_CHUNK_CELLS = 1 << 21  # rows x horizon cells per chunk: bounds the windows to ~16 MB each

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class LabelInputError(ValueError):
    """Candles that cannot be labelled; the message says what to fix."""


def labels_for_bot(
    candles: pd.DataFrame,
    timeframe: Timeframe | str,
    config: BotConfig,
    *,
    fees: FeeSchedule | None = None,
    side: Side = Side.BUY,
) -> pd.DataFrame:
    """`triple_barrier_labels` with a bot's take-profit, stop-loss, max holding and
    trailing stop."""
    return triple_barrier_labels(
        candles,
        timeframe,
        take_profit_pct=config.take_profit_pct,
        stop_loss_pct=config.stop_loss_pct,
        max_holding_seconds=config.max_holding_seconds,
        fees=fees,
        side=side,
        trailing_stop_pct=config.trailing_stop_pct,
    )


def triple_barrier_labels(
    candles: pd.DataFrame,
    timeframe: Timeframe | str,
    *,
    take_profit_pct: float,
    stop_loss_pct: float,
    max_holding_seconds: float,
    fees: FeeSchedule | None = None,
    side: Side = Side.BUY,
    trailing_stop_pct: float | None = None,
) -> pd.DataFrame:
    """One row per candle (same index) with LABEL_COLUMNS; see the module docstring.

    `candles` has the project's candle columns (start_ms, open, high, low, close) sorted by
    start_ms without duplicates; gaps (missing candles) are allowed.
    """
    if take_profit_pct <= 0 or stop_loss_pct <= 0 or max_holding_seconds <= 0:
        raise LabelInputError("take_profit_pct, stop_loss_pct and max_holding_seconds must be > 0")
    if trailing_stop_pct is not None and not 0 < trailing_stop_pct < 100:
        raise LabelInputError(f"trailing_stop_pct must be in (0, 100): {trailing_stop_pct}")
    fees = fees or FeeSchedule()
    start, open_, high, low, close = _columns(candles)
    end = start + parse_timeframe(timeframe).milliseconds
    rows = len(start)
    if rows < 2:
        return _assemble(
            candles.index, np.empty(0, dtype=np.int64), np.empty(0), [], [], [], [], fees, side
        )

    entry = open_[1:]
    take_profit, stop_loss = barrier_prices(side, entry, take_profit_pct, stop_loss_pct)
    expires = start[1:] + duration_ms(max_holding_seconds)
    timeout_index = np.searchsorted(end, expires, side="left")
    labelled = np.flatnonzero(timeout_index < rows)  # row i - its entry candle is i + 1
    barriers = _Barriers(side, entry, take_profit, stop_loss, trailing_stop_pct)
    exit_index, stops, trailing = _first_exit_candles(
        barriers, labelled, timeout_index[labelled], high, low
    )

    reasons, prices, times = [], [], []
    for row, tp, sl, trails, deadline, bar_open, bar_high, bar_low, bar_close, *times_ms in zip(
        labelled.tolist(),
        take_profit[labelled].tolist(),
        stops.tolist(),
        trailing.tolist(),
        expires[labelled].tolist(),
        open_[exit_index].tolist(),
        high[exit_index].tolist(),
        low[exit_index].tolist(),
        close[exit_index].tolist(),
        start[exit_index].tolist(),
        end[exit_index].tolist(),
        strict=True,
    ):
        reason = ExitReason.TRAILING_STOP if trails else ExitReason.STOP_LOSS
        bar_start, bar_end = times_ms
        exit_fill = resolve_bar(
            side, tp, sl, deadline, bar_open, bar_high, bar_low, bar_close, bar_start, bar_end,
            stop_reason=reason,
        )  # fmt: skip
        if exit_fill is None:  # pragma: no cover - the first-touch search and the rule disagree
            raise AssertionError(f"row {row}: the fill model finds no exit on its exit candle")
        reasons.append(_REASON_CODES[exit_fill.reason])
        prices.append(exit_fill.price)
        times.append(exit_fill.time_ms)

    return _assemble(
        candles.index, labelled, entry, exit_index.tolist(), reasons, prices, times, fees, side
    )


class _Barriers(NamedTuple):
    """Per row (its entry candle is the next one): entry price and fixed barriers."""

    side: Side
    entry: FloatArray
    take_profit: FloatArray
    stop_loss: FloatArray
    trailing_stop_pct: float | None


def _first_exit_candles(
    barriers: _Barriers,
    rows: IntArray,
    timeout_index: IntArray,
    high: FloatArray,
    low: FloatArray,
) -> tuple[IntArray, FloatArray, BoolArray]:
    """Per labelled row, the earliest candle touching a barrier, else its timeout candle;
    with the stop in force on that candle and whether it is the trail."""
    if len(rows) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0, dtype=np.bool_)
    side = barriers.side
    first_candle = rows + 1
    span = timeout_index - first_candle + 1  # candles from entry to timeout, inclusive
    width = int(span.max())
    pad = np.full(width - 1, np.nan)
    high_windows = sliding_window_view(np.concatenate([high, pad]), width)
    low_windows = sliding_window_view(np.concatenate([low, pad]), width)
    columns = np.arange(width)
    offsets = np.empty(len(rows), dtype=np.int64)
    stops = barriers.stop_loss[rows].copy()
    trailing = np.zeros(len(rows), dtype=np.bool_)
    chunk = max(1, _CHUNK_CELLS // width)
    for lo in range(0, len(rows), chunk):
        part = slice(lo, lo + chunk)
        firsts = first_candle[part]
        in_horizon = columns[None, :] < span[part, None]
        highs, lows = high_windows[firsts], low_windows[firsts]
        stop, trails = _stops(barriers, rows[part], highs, lows)
        stop_hit = stop_touched(side, lows, highs, stop) & in_horizon
        take_hit = take_profit_touched(side, lows, highs, barriers.take_profit[rows[part], None])
        take_hit &= in_horizon
        offset = span[part] - 1
        for hit in (stop_hit, take_hit):
            offset = np.minimum(offset, np.where(hit.any(axis=1), hit.argmax(axis=1), width))
        offsets[part] = offset
        if trails is not None:
            picked = np.arange(len(offset))
            stops[part] = stop[picked, offset]
            trailing[part] = trails[picked, offset]
    result: IntArray = first_candle + offsets
    return result, stops, trailing


def _stops(
    barriers: _Barriers, rows: IntArray, highs: FloatArray, lows: FloatArray
) -> tuple[FloatArray, BoolArray | None]:
    """The stop in force on each window candle, and where the trail is the tighter one
    (None without a trailing stop: the stop-loss throughout)."""
    stop_loss = barriers.stop_loss[rows, None]
    pct = barriers.trailing_stop_pct
    if pct is None:
        return stop_loss, None
    buy = barriers.side is Side.BUY
    entry = barriers.entry[rows, None]
    extreme = np.maximum if buy else np.minimum
    # the best price of the candles before each one (the entry's for the first)
    seen = extreme.accumulate(highs if buy else lows, axis=1)
    best = extreme(np.concatenate([entry, seen[:, :-1]], axis=1), entry)
    trail = trail_price(barriers.side, best, pct)
    tighter = trail > stop_loss if buy else trail < stop_loss
    return np.where(tighter, trail, stop_loss), tighter


def _columns(
    candles: pd.DataFrame,
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    missing = [name for name in ("start_ms", "open", "high", "low", "close") if name not in candles]
    if missing:
        raise LabelInputError(f"candles lack columns {missing}: pass a frame with CANDLE_COLUMNS")
    start = candles["start_ms"].to_numpy(dtype=np.int64)
    if len(start) > 1 and bool(np.any(np.diff(start) <= 0)):
        raise LabelInputError("candles must be sorted by start_ms without duplicates")
    prices = [candles[name].to_numpy(dtype=np.float64) for name in ("open", "high", "low", "close")]
    if not all(bool(np.isfinite(column).all()) for column in prices):
        raise LabelInputError("candle prices must be finite: drop or repair rows with NaN prices")
    return start, prices[0], prices[1], prices[2], prices[3]


def _assemble(
    index: pd.Index,
    labelled: IntArray,
    entry: FloatArray,
    exit_index: list[int],
    reason_codes: list[int],
    exit_prices: list[float],
    exit_times: list[int],
    fees: FeeSchedule,
    side: Side,
) -> pd.DataFrame:
    """Scatter the labelled rows' exits into full-length columns; derive label and returns."""
    rows = len(index)
    codes = np.array(reason_codes, dtype=np.int64)
    entry_done = entry[labelled]
    exit_done = np.array(exit_prices, dtype=np.float64)
    move = exit_done - entry_done if side is Side.BUY else entry_done - exit_done
    gross = move / entry_done
    exit_rate = np.where(codes == 0, fees.rate(Liquidity.MAKER), fees.rate(Liquidity.TAKER))
    net = gross - fees.rate(Liquidity.TAKER) - exit_rate * exit_done / entry_done

    def spread(values: npt.ArrayLike, missing: float | int, dtype: type[np.generic]) -> pd.Series:
        column = np.full(rows, missing, dtype=dtype)
        column[labelled] = values
        return pd.Series(column, index=index)

    entry_prices = np.full(rows, np.nan)
    entry_prices[: len(entry)] = entry
    reason_column = np.full(rows, -1, dtype=np.int64)
    reason_column[labelled] = codes
    return pd.DataFrame(
        {
            "label": spread(codes == 0, -1, np.int8),
            "exit_reason": pd.Categorical.from_codes(
                reason_column, categories=pd.Index([reason.value for reason in _REASONS])
            ),
            "exit_index": spread(exit_index, -1, np.int64),
            "entry_price": pd.Series(entry_prices, index=index),
            "exit_price": spread(exit_done, np.nan, np.float64),
            "exit_time_ms": spread(exit_times, -1, np.int64),
            "gross_return": spread(gross, np.nan, np.float64),
            "net_return": spread(net, np.nan, np.float64),
        },
        index=index,
    )
