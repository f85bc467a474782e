"""The fill model's rules, one case at a time (see tradepipe/orders/rules.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepipe.domain import Candle
from tradepipe.enums import ExitReason, Side
from tradepipe.orders import (
    ExitFill,
    Liquidity,
    barrier_prices,
    limit_entry_fill,
    resolve_bar,
    resolve_candle,
    stop_touched,
    take_profit_touched,
)
from tradepipe.timeframes import parse_timeframe

MINUTE = parse_timeframe("1m")
START, END = 600_000, 660_000
TP, SL = 110.0, 90.0  # a long entered at 100 with 10 % barriers
FAR = 10**12  # a holding deadline that does not matter


def bar(open_: float, high: float, low: float, close: float) -> Candle:
    return Candle("BTCUSDT", MINUTE, START, open_, high, low, close, 1.0)


def long_exit(candle: Candle, expires: int = FAR, eligible: bool = True) -> ExitFill | None:
    return resolve_candle(Side.BUY, TP, SL, expires, candle, take_profit_eligible=eligible)


def test_quiet_candle_keeps_the_position_open() -> None:
    assert long_exit(bar(100, 105, 95, 101)) is None


def test_take_profit_inside_the_candle_fills_at_the_take_profit_price_at_the_close() -> None:
    assert long_exit(bar(100, 111, 95, 101)) == (ExitReason.TAKE_PROFIT, TP, END)


def test_stop_inside_the_candle_fills_at_the_stop_price_at_the_close() -> None:
    assert long_exit(bar(100, 105, 89, 101)) == (ExitReason.STOP_LOSS, SL, END)


def test_both_barriers_inside_one_candle_stop_loss_wins() -> None:
    assert long_exit(bar(100, 120, 80, 115)) == (ExitReason.STOP_LOSS, SL, END)


def test_touching_a_barrier_exactly_counts() -> None:
    assert long_exit(bar(100, 110, 95, 101)) == (ExitReason.TAKE_PROFIT, TP, END)
    assert long_exit(bar(100, 105, 90, 101)) == (ExitReason.STOP_LOSS, SL, END)


def test_gap_through_the_stop_fills_at_the_open() -> None:
    assert long_exit(bar(85, 120, 80, 100)) == (ExitReason.STOP_LOSS, 85.0, START)


def test_gap_through_the_take_profit_fills_the_resting_limit_at_its_price_first() -> None:
    # the open is above the take-profit: it was certainly touched before the low
    assert long_exit(bar(112, 115, 80, 100)) == (ExitReason.TAKE_PROFIT, TP, START)


def test_timeout_exits_at_the_close_of_the_candle_ending_at_the_deadline() -> None:
    assert long_exit(bar(100, 105, 95, 101), expires=END) == (ExitReason.TIMEOUT, 101.0, END)
    assert long_exit(bar(100, 105, 95, 101), expires=END + 1) is None


def test_a_barrier_touched_on_the_timeout_candle_beats_the_timeout() -> None:
    assert long_exit(bar(100, 105, 89, 101), expires=END) == (ExitReason.STOP_LOSS, SL, END)


def test_a_candle_starting_after_the_deadline_times_out_at_its_open_before_anything() -> None:
    # a gap in the data: the deadline passed while no candle existed
    assert long_exit(bar(85, 120, 80, 100), expires=START) == (ExitReason.TIMEOUT, 85.0, START)


def test_entry_candle_of_an_intra_candle_limit_fill_can_stop_but_not_take_profit() -> None:
    assert long_exit(bar(100, 111, 95, 101), eligible=False) is None
    assert long_exit(bar(100, 120, 80, 101), eligible=False) == (ExitReason.STOP_LOSS, SL, END)


def test_short_positions_mirror_the_barriers() -> None:
    take_profit, stop = barrier_prices(Side.SELL, 100.0, 10.0, 10.0)
    assert (take_profit, stop) == pytest.approx((90.0, 110.0))
    hit = resolve_bar(Side.SELL, take_profit, stop, FAR, 100, 111, 89, 100, START, END)
    assert hit == (ExitReason.STOP_LOSS, stop, END)
    gap = resolve_bar(Side.SELL, take_profit, stop, FAR, 115, 116, 100, 100, START, END)
    assert gap == (ExitReason.STOP_LOSS, 115.0, START)
    win = resolve_bar(Side.SELL, take_profit, stop, FAR, 100, 105, 85, 100, START, END)
    assert win == (ExitReason.TAKE_PROFIT, take_profit, END)


def test_limit_buy_marketable_on_arrival_fills_at_the_open_as_taker() -> None:
    assert limit_entry_fill(Side.BUY, 100.0, bar(99, 101, 98, 100), resting=False) == (
        99.0,
        True,
        Liquidity.TAKER,
    )


def test_resting_limit_buy_crossed_by_the_open_fills_at_its_price_as_maker() -> None:
    assert limit_entry_fill(Side.BUY, 100.0, bar(99, 101, 98, 100), resting=True) == (
        100.0,
        True,
        Liquidity.MAKER,
    )


def test_limit_buy_touched_inside_the_candle_fills_at_its_price_as_maker() -> None:
    fill = limit_entry_fill(Side.BUY, 100.0, bar(102, 103, 100, 101), resting=False)
    assert fill == (100.0, False, Liquidity.MAKER)


def test_limit_buy_not_touched_does_not_fill() -> None:
    assert limit_entry_fill(Side.BUY, 100.0, bar(102, 103, 100.5, 101), resting=True) is None


def test_limit_sell_mirrors_the_buy() -> None:
    assert limit_entry_fill(Side.SELL, 100.0, bar(98, 100, 97, 99), resting=False) == (
        100.0,
        False,
        Liquidity.MAKER,
    )
    assert limit_entry_fill(Side.SELL, 100.0, bar(101, 102, 97, 99), resting=False) == (
        101.0,
        True,
        Liquidity.TAKER,
    )


prices = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)
percents = st.floats(min_value=0.01, max_value=99.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(prices, min_size=1, max_size=20), percents, percents, st.sampled_from(Side))
def test_barriers_and_touches_are_bit_identical_on_floats_and_arrays(
    entries: list[float], take_profit_pct: float, stop_loss_pct: float, side: Side
) -> None:
    array = np.array(entries)
    tp_array, sl_array = barrier_prices(side, array, take_profit_pct, stop_loss_pct)
    for index, entry in enumerate(entries):
        tp, sl = barrier_prices(side, entry, take_profit_pct, stop_loss_pct)
        assert (tp, sl) == (tp_array[index], sl_array[index])
        assert stop_touched(side, entry, entry, sl) == bool(
            stop_touched(side, array, array, sl_array)[index]
        )
        assert take_profit_touched(side, entry, entry, tp) == bool(
            take_profit_touched(side, array, array, tp_array)[index]
        )
