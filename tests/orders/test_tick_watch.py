"""The tick watch of a live book: a tick it calls quiet is one the book's full rules turn
into no event, over random books (long and short, market and maker entries, fills,
trailing stops) and random ticks; the book with the watch and one that always runs the
rules give the same events and end in the same state."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tradepipe.domain import Candle, Side
from tradepipe.enums import OrderType
from tradepipe.orders import EntryRequest, FeeSchedule, PositionBook
from tradepipe.orders.watch import TickWatch
from tradepipe.timeframes import ONE_SECOND as SECOND

FEES = FeeSchedule(maker_rate=0.001, taker_rate=0.002)
ALWAYS_RUN = TickWatch(-math.inf, math.inf, -math.inf)


class Unwatched(PositionBook):
    """The same book, its rules run on every tick (the watch never says quiet)."""

    def on_tick(self, time_ms: int, price: float | None = None):  # type: ignore[no-untyped-def]
        self._watch = ALWAYS_RUN
        return super().on_tick(time_ms, price)


entries = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.sampled_from([OrderType.MARKET, OrderType.LIMIT]),
        st.floats(0.5, 5.0),  # stop-loss %
        st.one_of(st.none(), st.floats(0.2, 3.0)),  # trailing stop %
        st.integers(1_000, 60_000),  # max holding ms
        st.booleans(),  # filled
    ),
    min_size=1,
    max_size=3,
)
ticks = st.lists(
    st.tuples(st.integers(0, 5_000), st.one_of(st.none(), st.floats(94.0, 106.0))),
    min_size=1,
    max_size=40,
)


def _books() -> tuple[PositionBook, PositionBook]:
    return tuple(  # type: ignore[return-value]
        cls("bot1", "BTCUSDT", fees=FEES, simulated=False, max_open_positions=3)
        for cls in (PositionBook, Unwatched)
    )


@settings(max_examples=500, deadline=None)
@given(entries, ticks)
def test_a_watched_book_ticks_exactly_as_one_that_always_runs_its_rules(
    wanted: list[tuple[Side, OrderType, float, float | None, int, bool]],
    moves: list[tuple[int, float | None]],
) -> None:
    watched, unwatched = _books()
    for book in (watched, unwatched):
        for seq, (side, order_type, stop, trail, holding, filled) in enumerate(wanted, 1):
            limit = (
                {"limit_price": 100.0, "maker_timeout_ms": 2_000}
                if order_type is OrderType.LIMIT
                else {}
            )
            request = EntryRequest(
                side=side,
                order_type=order_type,
                capital=1_000.0,
                take_profit_pct=10.0,
                stop_loss_pct=stop,
                trailing_stop_pct=trail,
                max_holding_ms=holding,
                **limit,  # type: ignore[arg-type]
            )
            book.submit_entry(request, 1_000)
            order_id = f"bot1-{seq}-en"
            book.on_accepted(order_id, 1_001)
            if filled:
                book.on_fill(order_id, 100.0, 1_002)
    time_ms = 1_002
    for index, (step, price) in enumerate(moves):
        time_ms += step
        assert watched.on_tick(time_ms, price) == unwatched.on_tick(time_ms, price)
        if index % 4 == 3 and price is not None:  # a closed candle ratchets trailing stops
            start = SECOND.floor_ms(time_ms) - 1_000
            bar = Candle("BTCUSDT", SECOND, start, price, price * 1.01, price * 0.99, price, 1.0)
            assert watched.on_closed_candle(bar) == unwatched.on_closed_candle(bar)
    assert watched.to_dict() == unwatched.to_dict()
