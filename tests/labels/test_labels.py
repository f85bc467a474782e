"""Triple-barrier labels: equal, row by row, to the state machine trading the same candles."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import event as tally
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepipe.botconfig import BotConfig
from tradepipe.candles import CANDLE_COLUMNS, frame_to_candles
from tradepipe.enums import ExitReason, OrderType, Side
from tradepipe.labels import LABEL_COLUMNS, LabelInputError, labels_for_bot, triple_barrier_labels
from tradepipe.orders import EntryRequest, FeeSchedule, Position, PositionBook, PositionClosed


@st.composite
def candle_frames(draw: st.DrawFn) -> pd.DataFrame:
    """Random 1-minute candles with gaps; coarse moves make ties and gap opens frequent."""
    rows = draw(st.integers(min_value=0, max_value=60))
    price, start, records = 100.0, 0, []
    for _ in range(rows):
        start += 60_000 * draw(st.sampled_from([1, 1, 1, 1, 1, 2, 6]))
        open_ = price * (1 + draw(st.integers(-3, 3)) / 100)
        close = open_ * (1 + draw(st.integers(-3, 3)) / 100)
        high = max(open_, close) * (1 + draw(st.integers(0, 4)) / 100)
        low = min(open_, close) * (1 - draw(st.integers(0, 4)) / 100)
        records.append((start, open_, high, low, close, 1.0, math.nan, math.nan))
        price = close
    return pd.DataFrame(records, columns=list(CANDLE_COLUMNS)).astype({"start_ms": "int64"})


def trade_every_row(
    frame: pd.DataFrame,
    side: Side,
    take_profit_pct: float,
    stop_loss_pct: float,
    holding_seconds: float,
    fees: FeeSchedule,
    trailing_stop_pct: float | None = None,
) -> dict[int, tuple[Position, int]]:
    """The state machine entering at market at every candle's close: row -> (closed
    position, index of the candle it closed on)."""
    book = PositionBook("labels", "X", max_open_positions=max(1, len(frame)), fees=fees)
    config = BotConfig(
        capital_per_trade=1_000,
        take_profit_pct=take_profit_pct,
        stop_loss_pct=stop_loss_pct,
        max_holding_seconds=holding_seconds,
        maker_order_timeout_seconds=60,
        trailing_stop_pct=trailing_stop_pct,
    )
    request = EntryRequest.from_config(config, side=side)
    assert request.order_type is OrderType.MARKET
    closed: dict[int, tuple[Position, int]] = {}
    for index, candle in enumerate(frame_to_candles(frame, "X", "1m")):
        for event in book.on_candle(candle):
            if isinstance(event, PositionClosed):
                closed[event.position.seq - 1] = (event.position, index)
        book.submit_entry(request, candle.end_ms)
    return closed


@settings(max_examples=400, deadline=None)
@given(
    candle_frames(),
    st.sampled_from(Side),
    st.sampled_from([0.5, 1.0, 2.0, 3.0, 4.5]),
    st.sampled_from([0.5, 1.0, 2.0, 3.0, 4.5]),
    st.sampled_from([30, 60, 90, 180, 300, 600]),
    st.builds(FeeSchedule, st.sampled_from([0.0, 0.001]), st.sampled_from([0.0, 0.002])),
    st.sampled_from([None, None, 0.5, 1.0, 2.0, 4.0]),
)
def test_every_label_equals_the_state_machine(
    frame: pd.DataFrame,
    side: Side,
    take_profit_pct: float,
    stop_loss_pct: float,
    holding_seconds: float,
    fees: FeeSchedule,
    trailing_stop_pct: float | None,
) -> None:
    labels = triple_barrier_labels(
        frame,
        "1m",
        take_profit_pct=take_profit_pct,
        stop_loss_pct=stop_loss_pct,
        max_holding_seconds=holding_seconds,
        fees=fees,
        side=side,
        trailing_stop_pct=trailing_stop_pct,
    )
    closed = trade_every_row(
        frame, side, take_profit_pct, stop_loss_pct, holding_seconds, fees, trailing_stop_pct
    )
    for row in range(len(frame)):
        label = labels.iloc[row]
        if label["label"] == -1:
            # no full horizon in the data: the machine is either still holding or left at a
            # barrier; never by a timeout, which would have needed the horizon's last candle
            if row in closed:
                assert closed[row][0].exit_reason is not ExitReason.TIMEOUT
            continue
        position, exit_index = closed[row]
        at_open = position.closed_at_ms == frame["start_ms"].iloc[exit_index]
        tally(f"{position.exit_reason}{' at the open' if at_open else ''}")
        assert label["exit_reason"] == position.exit_reason
        assert label["label"] == int(position.exit_reason is ExitReason.TAKE_PROFIT)
        assert label["exit_index"] == exit_index
        assert label["entry_price"] == position.entry_price
        assert label["exit_price"] == position.exit_price
        assert label["exit_time_ms"] == position.closed_at_ms
        assert position.entry_price is not None
        notional = position.quantity * position.entry_price
        assert label["gross_return"] == pytest.approx(position.gross_pnl / notional, abs=1e-12)
        assert label["net_return"] == pytest.approx(position.net_pnl / notional, abs=1e-12)


def frame(
    *candles: tuple[float, float, float, float], starts: list[int] | None = None
) -> pd.DataFrame:
    starts = starts or [index * 60_000 for index in range(len(candles))]
    records = [
        (start, *ohlc, 1.0, math.nan, math.nan) for start, ohlc in zip(starts, candles, strict=True)
    ]
    return pd.DataFrame(records, columns=list(CANDLE_COLUMNS))


def test_known_labels_and_the_unlabelled_tail() -> None:
    candles = frame(
        (100, 100, 100, 100),
        (100, 101, 99.5, 100),  # row 0 enters here at 100
        (100, 102.5, 99.5, 102),  # rows 0 and 1 (entered at this open) take profit at 102
        (102, 105, 97, 98),  # row 2 (entry 102) touches both barriers: the stop wins
        (98, 99, 97.5, 98),
        (98, 98.5, 97.9, 98.2),
    )
    labels = triple_barrier_labels(
        candles, "1m", take_profit_pct=2, stop_loss_pct=2, max_holding_seconds=180
    )
    assert list(labels.columns) == list(LABEL_COLUMNS)
    assert labels["label"].tolist() == [1, 1, 0, -1, -1, -1]  # rows 3+: horizon past the end
    assert labels["exit_reason"].tolist()[:3] == ["take_profit", "take_profit", "stop_loss"]
    assert labels["exit_index"].tolist() == [2, 2, 3, -1, -1, -1]
    assert labels["exit_price"].iloc[2] == pytest.approx(102 * 0.98)
    assert labels["exit_price"].iloc[0] == pytest.approx(102.0)
    assert labels["gross_return"].iloc[0] == pytest.approx(0.02)
    assert math.isnan(labels["entry_price"].iloc[-1])
    assert labels["label"].dtype == np.int8 and labels["exit_index"].dtype == np.int64


def test_timeout_label_and_fees() -> None:
    candles = frame(*[(100.0, 100.5, 99.5, 100.25)] * 5)
    labels = triple_barrier_labels(
        candles,
        "1m",
        take_profit_pct=5,
        stop_loss_pct=5,
        max_holding_seconds=120,
        fees=FeeSchedule(maker_rate=0.001, taker_rate=0.002),
    )
    assert labels["exit_reason"].iloc[0] == "timeout"
    assert labels["exit_index"].iloc[0] == 2  # entry candle 1, 2 minutes end with candle 2
    assert labels["net_return"].iloc[0] == pytest.approx(0.0025 - 0.002 - 0.002 * 1.0025)


def test_index_is_kept_and_bot_configs_work() -> None:
    candles = frame(*[(100.0, 101.0, 99.0, 100.0)] * 4)
    candles.index = pd.Index([10, 20, 30, 40])
    config = BotConfig(
        capital_per_trade=1,
        take_profit_pct=0.5,
        stop_loss_pct=2,
        max_holding_seconds=60,
        maker_order_timeout_seconds=1,
    )
    labels = labels_for_bot(candles, "1m", config)
    assert list(labels.index) == [10, 20, 30, 40]
    assert labels["label"].tolist() == [1, 1, 1, -1]


def test_empty_and_single_row_frames() -> None:
    for rows in (0, 1):
        labels = triple_barrier_labels(
            frame(*[(1.0, 1.0, 1.0, 1.0)] * rows),
            "1m",
            take_profit_pct=1,
            stop_loss_pct=1,
            max_holding_seconds=60,
        )
        assert len(labels) == rows and list(labels.columns) == list(LABEL_COLUMNS)


@pytest.mark.parametrize(
    ("candles", "message"),
    [
        (frame((1, 1, 1, 1)).drop(columns=["high"]), "lack columns"),
        (frame((1, 1, 1, 1), (1, 1, 1, 1), starts=[60_000, 0]), "sorted"),
        (frame((1, 1, 1, 1), (1, 1, 1, 1), starts=[0, 0]), "duplicates"),
        (frame((1, 1, math.nan, 1)), "finite"),
    ],
)
def test_bad_candles_are_refused_with_a_message(candles: pd.DataFrame, message: str) -> None:
    with pytest.raises(LabelInputError, match=message):
        triple_barrier_labels(
            candles, "1m", take_profit_pct=1, stop_loss_pct=1, max_holding_seconds=60
        )
