"""1 s candles across feed gaps: the backfill owns the gap's seconds, live candles after it
wait their turn, a failed backfill releases what was built, a downed link holds the clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from live.feeds import (
    BackfillError,
    FeedState,
    HealingConfig,
    InMemoryBackfill,
    InMemoryFeed,
    SecondCandles,
)
from live.feeds.protocol import Gap
from tradepipe.candles import candles_from_trades
from tradepipe.domain import Candle, Side, Trade
from tradepipe.timeframes import Timeframe

Aio = Any  # conftest.Aio (conftest modules are not importable by name)
QUICK = HealingConfig(settle_seconds=0, retry_seconds=0)

# The exchange's record: ids 3, 4, 5 never reach the feed.
MARKET = [
    Trade("BTCUSDT", time_ms, price, 1.0, Side.BUY if trade_id % 2 else Side.SELL, trade_id)
    for trade_id, time_ms, price in [
        (1, 1_100, 10.0), (2, 1_500, 11.0), (3, 1_700, 12.0), (4, 2_200, 13.0),
        (5, 3_900, 14.0), (6, 4_100, 15.0), (7, 4_600, 16.0), (8, 5_200, 17.0),
        (9, 6_100, 18.0), (10, 7_300, 19.0),
    ]
]  # fmt: skip
MISSED = {3, 4, 5}
EXCHANGE_SECONDS = list(candles_from_trades(MARKET, "1s"))


def received() -> list[Trade]:
    return [t for t in MARKET if t.trade_id not in MISSED]


class GatedBackfill(InMemoryBackfill):
    """Answers only when the test opens the gate."""

    def __init__(self, candles: list[Candle]) -> None:
        super().__init__(candles)
        self.gate = asyncio.Event()
        self.waiting = 0

    async def fetch_candles(
        self, symbol: str, timeframe: Timeframe | str, start_ms: int, end_ms: int
    ) -> list[Candle]:
        self.waiting += 1
        await self.gate.wait()
        return await super().fetch_candles(symbol, timeframe, start_ms, end_ms)


def test_a_gap_is_filled_with_the_exchanges_candles_in_order(aio: Aio) -> None:
    out: list[Candle] = []

    async def scenario() -> None:
        backfill = GatedBackfill(EXCHANGE_SECONDS)
        healer = SecondCandles(out.append, backfill, QUICK)
        feed = InMemoryFeed()
        await feed.subscribe(["BTCUSDT"], healer)
        await feed.start()
        feed.push(*received()[:2])
        assert out == []  # second 1 is still open
        feed.push(*received()[2:5])  # ids 6, 7, 8: a Gap(2 -> 6) first
        assert healer.pending_gaps() == {"BTCUSDT": (1_000, 4_000)}
        feed.push(received()[5])  # second 6 closes second 5: held while the backfill runs
        await asyncio.sleep(0.01)
        assert out == [] and backfill.waiting == 1
        backfill.gate.set()
        await aio.within(healer.wait_idle())
        assert backfill.requests == [("BTCUSDT", "1s", 1_000, 5_000)]
        assert [c.start_ms for c in out] == [1_000, 2_000, 3_000, 4_000, 5_000]
        feed.push(received()[6])
        healer.flush()
        assert healer.pending_gaps() == {}
        assert healer.stats.backfills == 1 and healer.stats.backfilled_candles == 4

    aio.run(scenario())
    assert out == EXCHANGE_SECONDS  # as if nothing had been missed


def test_a_failed_backfill_releases_the_candles_built_and_counts_the_gap(aio: Aio) -> None:
    out: list[Candle] = []

    async def scenario() -> None:
        backfill = InMemoryBackfill(error="cannot reach binance (offline?)")
        healer = SecondCandles(out.append, backfill, HealingConfig(0, attempts=2, retry_seconds=0))
        feed = InMemoryFeed()
        await feed.subscribe(["BTCUSDT"], healer)
        await feed.start()
        feed.push(*received())
        healer.flush()
        await aio.within(healer.wait_idle())
        assert len(backfill.requests) == 2  # retried, then gave up
        assert healer.stats.unhealed_gaps == 1
        assert "cannot reach binance" in healer.stats.errors[0]

    aio.run(scenario())
    built = list(candles_from_trades(received(), "1s"))
    assert out == built  # the series goes on, seconds 2 and 3 visibly absent
    assert [c.start_ms for c in out] == [1_000, 4_000, 5_000, 6_000, 7_000]


def test_while_the_link_is_down_the_clock_does_not_close_a_candle(aio: Aio) -> None:
    out: list[Candle] = []

    async def scenario() -> None:
        healer = SecondCandles(out.append, InMemoryBackfill(EXCHANGE_SECONDS), QUICK)
        feed = InMemoryFeed()
        await feed.subscribe(["BTCUSDT"], healer)
        await feed.start()
        feed.push(*received()[:2])
        feed.set_state(FeedState.BACKING_OFF, "lost")
        healer.close_until(3_000)  # second 1 is over, but trades of it may be missing
        assert out == []
        feed.set_state(FeedState.CONNECTED)
        feed.push(*received()[2:])
        healer.flush()
        await aio.within(healer.wait_idle())

    aio.run(scenario())
    assert out == EXCHANGE_SECONDS


def test_when_connected_the_clock_closes_candles_on_time(aio: Aio) -> None:
    out: list[Candle] = []

    async def scenario() -> None:
        healer = SecondCandles(out.append, InMemoryBackfill(), QUICK)
        feed = InMemoryFeed()
        await feed.subscribe(["BTCUSDT"], healer)
        await feed.start()
        feed.push(MARKET[0], MARKET[1])
        healer.close_until(1_999)
        assert out == []
        healer.close_until(2_000)
        assert [c.start_ms for c in out] == [1_000]

    aio.run(scenario())


def test_a_second_gap_during_a_backfill_widens_the_window(aio: Aio) -> None:
    out: list[Candle] = []
    missed = {3, 4, 5, 8}

    async def scenario() -> None:
        backfill = GatedBackfill(EXCHANGE_SECONDS)
        healer = SecondCandles(out.append, backfill, QUICK)
        feed = InMemoryFeed()
        await feed.subscribe(["BTCUSDT"], healer)
        await feed.start()
        live = [t for t in MARKET if t.trade_id not in missed]
        feed.push(*live[:4])  # 1, 2, 6, 7: the first gap
        healer.close_until(5_000)  # second 4 over: the first backfill starts
        await asyncio.sleep(0.01)
        feed.push(*live[4:])  # 9 (gap 7 -> 9 reaches second 6), 10
        backfill.gate.set()
        healer.flush()
        await aio.within(healer.wait_idle())
        assert [r[2:] for r in backfill.requests] == [(1_000, 5_000), (5_000, 7_000)]

    aio.run(scenario())
    assert out == EXCHANGE_SECONDS


def test_a_second_the_clock_already_closed_is_not_sent_twice(aio: Aio) -> None:
    out: list[Candle] = []

    async def scenario() -> None:
        healer = SecondCandles(out.append, InMemoryBackfill(EXCHANGE_SECONDS), QUICK)
        healer.on_trade(MARKET[0])
        healer.on_trade(MARKET[1])
        healer.close_until(2_500)  # the link looked fine: second 1 goes out as built
        healer.on_gap(Gap("BTCUSDT", 1_500, 4_100, 2, 6))
        for trade in received()[2:]:
            healer.on_trade(trade)
        healer.flush()
        await aio.within(healer.wait_idle())

    aio.run(scenario())
    assert [c.start_ms for c in out] == [1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000]
    assert out[1:] == EXCHANGE_SECONDS[1:]


def test_healing_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="attempts"):
        HealingConfig(attempts=0)
    with pytest.raises(BackfillError, match="offline"):
        asyncio.run(InMemoryBackfill(error="offline").fetch_candles("X", "1s", 0, 1))
