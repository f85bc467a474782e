"""The synthetic market: a contract shared by research and replay, so it must be exactly
reproducible, independent of chunking, and carry the structure its docstring promises."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepipe import synthetic
from tradepipe.candles import TRADE_COLUMNS, aggregate_trades
from tradepipe.costs import PAPER_COSTS
from tradepipe.synthetic import HOUR_MS, ORIGIN_MS, SyntheticMarket

DAY_MS = 86_400_000
JAN_1 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MARKET = SyntheticMarket()


@pytest.fixture(scope="module")
def minutes() -> pd.DataFrame:
    """20 days of 1m candles: enough minutes to see weak effects well above noise."""
    return aggregate_trades(MARKET.trades(JAN_1, JAN_1 + 20 * DAY_MS), "1m")


def test_trades_frame_shape_types_and_order() -> None:
    trades = MARKET.trades(JAN_1, JAN_1 + 6 * HOUR_MS)
    assert tuple(trades.columns) == TRADE_COLUMNS
    assert trades.dtypes.astype(str).to_dict() == {
        "time_ms": "int64",
        "trade_id": "int64",
        "price": "float64",
        "quantity": "float64",
        "taker_buy": "bool",
    }
    assert trades["time_ms"].is_monotonic_increasing
    assert (np.diff(trades["trade_id"].to_numpy()) == 1).all()
    assert trades["time_ms"].between(JAN_1, JAN_1 + 6 * HOUR_MS - 1).all()
    # 10..30 trades a minute on average, as the replay server and benchmarks expect
    assert 10 <= len(trades) / 360 <= 30


def test_prices_and_quantities_are_positive_and_rounded() -> None:
    trades = MARKET.trades(JAN_1, JAN_1 + DAY_MS)
    prices, quantities = trades["price"].to_numpy(), trades["quantity"].to_numpy()
    assert MARKET.tick_size == pytest.approx(0.01)
    assert (prices > 0).all() and (quantities >= 1e-5).all()
    assert np.array_equal(prices, np.round(prices, 2))
    assert np.array_equal(quantities, np.round(quantities, 5))
    assert 0.4 < trades["taker_buy"].mean() < 0.6


def test_same_seed_is_the_same_market_even_after_the_cache_is_cleared() -> None:
    first = MARKET.trades(JAN_1, JAN_1 + 2 * HOUR_MS)
    synthetic._coarse_page.cache_clear()
    again = SyntheticMarket(symbol="BTCUSDT", seed=7).trades(JAN_1, JAN_1 + 2 * HOUR_MS)
    pd.testing.assert_frame_equal(first, again)


def test_the_market_is_pinned() -> None:
    # Every stored synthetic dataset and every replay depends on these exact numbers; a change
    # here (our code, or numpy's random streams after an upgrade) changes all of them.
    trades = MARKET.trades(JAN_1, JAN_1 + HOUR_MS)
    assert trades.iloc[0].tolist() == [1704067200633, 58885502, 40277.86, 0.00812, False]
    assert trades.iloc[-1].tolist() == [1704070797813, 58886452, 40150.93, 0.00218, False]
    assert len(trades) == 951


def test_seeds_and_symbols_are_different_markets() -> None:
    window = (JAN_1, JAN_1 + HOUR_MS)
    base = MARKET.trades(*window)
    assert not base["price"].equals(SyntheticMarket(seed=8).trades(*window)["price"])
    assert not base["price"].equals(SyntheticMarket(symbol="ETHUSDT").trades(*window)["price"])


@settings(max_examples=25, deadline=None)
@given(
    start=st.integers(JAN_1, JAN_1 + 3 * DAY_MS),
    first=st.integers(0, 3 * HOUR_MS),
    second=st.integers(0, 3 * HOUR_MS),
)
def test_any_split_of_a_range_concatenates_to_the_whole(
    start: int, first: int, second: int
) -> None:
    middle, end = start + first, start + first + second
    whole = MARKET.trades(start, end)
    parts = pd.concat([MARKET.trades(start, middle), MARKET.trades(middle, end)])
    pd.testing.assert_frame_equal(whole, parts.reset_index(drop=True))


def test_hour_boundaries_are_continuous() -> None:
    # Bridged blocks end at the next hour's anchor: no jump where generation blocks meet.
    candles = aggregate_trades(MARKET.trades(JAN_1, JAN_1 + 2 * DAY_MS), "1m")
    gaps = np.log(candles["open"].to_numpy()[1:] / candles["close"].to_numpy()[:-1])
    on_hour = candles["start_ms"].to_numpy()[1:] % HOUR_MS == 0
    assert np.abs(gaps[on_hour]).mean() < 3 * np.abs(gaps[~on_hour]).mean()


def test_empty_and_invalid_ranges() -> None:
    assert MARKET.trades(JAN_1, JAN_1).empty
    assert MARKET.trades(JAN_1 + 5, JAN_1).empty
    with pytest.raises(ValueError, match="2017-01-01"):
        MARKET.trades(ORIGIN_MS - 1, ORIGIN_MS + 1)
    with pytest.raises(ValueError, match="seed"):
        SyntheticMarket(seed=-1)
    with pytest.raises(ValueError, match="start_price"):
        SyntheticMarket(start_price=0.0)


def test_fat_tails(minutes: pd.DataFrame) -> None:
    returns = np.diff(np.log(minutes["close"].to_numpy()))
    standardized = (returns - returns.mean()) / returns.std()
    assert float(np.mean(standardized**4)) > 3.0  # kurtosis of a normal is 3


def test_volatility_clusters(minutes: pd.DataFrame) -> None:
    size = np.abs(np.diff(np.log(minutes["close"].to_numpy())))
    for lag in (1, 10, 60):
        assert _correlation(size[:-lag], size[lag:]) > 0.05, lag


def test_taker_flow_moves_and_leads_returns(minutes: pd.DataFrame) -> None:
    imbalance = (2 * minutes["taker_buy_volume"] / minutes["volume"] - 1).to_numpy()
    returns = np.log(minutes["close"].to_numpy() / minutes["open"].to_numpy())
    assert _correlation(imbalance, returns) > 0.2  # contemporaneous: strong
    lead = _correlation(imbalance[:-1], returns[1:])  # next minute: weak but real
    assert 3 / math.sqrt(len(returns)) < lead < 0.1


def test_trend_regimes_drift_their_way() -> None:
    hours = MARKET.hourly_states(JAN_1 - 365 * DAY_MS, JAN_1)
    returns = np.diff(np.log(hours["open_price"].to_numpy()))
    regime = hours["regime"].to_numpy()[:-1]
    assert set(regime) == {synthetic.RANGE, synthetic.TREND_UP, synthetic.TREND_DOWN}
    up, down = returns[regime == synthetic.TREND_UP], returns[regime == synthetic.TREND_DOWN]
    assert up.mean() > 0 > down.mean()
    flow = hours["flow_bias"].to_numpy()[:-1]
    assert flow[regime == synthetic.TREND_UP].mean() > flow[regime == synthetic.TREND_DOWN].mean()


def test_flow_bursts_precede_moves_wider_than_the_paper_round_trip(minutes: pd.DataFrame) -> None:
    # The demo's stated edge: one-sided taker flow for BURST_MINUTES, then a BURST_MOVE move.
    hours = MARKET.hourly_states(JAN_1, JAN_1 + 20 * DAY_MS)
    bursts = hours[hours["burst_sign"] != 0]
    assert 0.08 < len(bursts) / len(hours) < 0.25
    by_start = minutes.set_index("start_ms")
    imbalance = 2 * by_start["taker_buy_volume"] / by_start["volume"] - 1
    flows, moves = [], []
    for hour in bursts.itertuples():
        first = hour.hour_start_ms + hour.burst_minute * 60_000
        last = first + (synthetic.BURST_MINUTES - 1) * 60_000
        after = last + synthetic.MOVE_MINUTES * 60_000
        flows.append(hour.burst_sign * imbalance.loc[first:last].mean())
        moves.append(
            hour.burst_sign * math.log(by_start.at[after, "close"] / by_start.at[last, "close"])
        )
    assert np.mean(flows) > 0.5  # the burst is visible in the candles' taker volume
    assert np.mean(moves) > 2 * PAPER_COSTS.round_trip  # and the move clears a round trip
    assert np.mean(np.array(moves) > PAPER_COSTS.round_trip) > 0.8


def _correlation(left: npt.NDArray[np.float64], right: npt.NDArray[np.float64]) -> float:
    return float(np.corrcoef(left, right)[0, 1])
