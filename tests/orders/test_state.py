"""Deterministic client order ids and the saved state of a book."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradepipe.domain import Candle
from tradepipe.enums import OrderRole, OrderType, PositionStatus
from tradepipe.orders import (
    EntryRequest,
    FeeSchedule,
    InvalidOrderError,
    PositionBook,
    StateError,
    client_order_id,
    parse_client_order_id,
)
from tradepipe.timeframes import parse_timeframe

MINUTE = parse_timeframe("1m")


def test_client_order_ids_are_deterministic_and_short() -> None:
    assert client_order_id("bot1", 7, OrderRole.ENTRY) == "bot1-7-en"
    assert client_order_id("bot1", 7, OrderRole.STOP_LOSS, attempt=2) == "bot1-7-sl-2"
    longest = client_order_id("b" * 20, 10**9 - 1, OrderRole.TIMEOUT_EXIT, attempt=99)
    assert len(longest) == 36  # Binance's limit
    with pytest.raises(InvalidOrderError, match="36"):
        client_order_id("b" * 20, 10**9, OrderRole.TIMEOUT_EXIT, attempt=99)


@given(
    st.from_regex(r"[A-Za-z0-9_]{1,20}", fullmatch=True),
    st.integers(0, 10**8),
    st.sampled_from(OrderRole),
    st.integers(1, 99),
)
def test_client_order_ids_parse_back(bot: str, seq: int, role: OrderRole, attempt: int) -> None:
    assert parse_client_order_id(client_order_id(bot, seq, role, attempt)) == (
        bot,
        seq,
        role,
        attempt,
    )


@pytest.mark.parametrize("bot", ["", "has-dash", "has space", "x" * 21])
def test_bot_names_that_cannot_form_ids_are_refused(bot: str) -> None:
    with pytest.raises(InvalidOrderError, match="bot name"):
        client_order_id(bot, 1, OrderRole.ENTRY)


def test_foreign_ids_do_not_parse() -> None:
    assert parse_client_order_id("web_abc123") is None
    assert parse_client_order_id("bot1-1-zz") is None


def sample_book() -> PositionBook:
    book = PositionBook("bot1", "BTCUSDT", max_open_positions=3, fees=FeeSchedule(0.001, 0.001))
    base = {"capital": 500.0, "take_profit_pct": 2.0, "stop_loss_pct": 1.0}
    book.submit_entry(
        EntryRequest(
            order_type=OrderType.MARKET,
            max_holding_ms=600_000,
            strategy_hash="h1",
            model_version="3",
            **base,  # type: ignore[arg-type]
        ),
        60_000,
    )
    book.submit_entry(
        EntryRequest(
            order_type=OrderType.LIMIT,
            limit_price=90.0,
            maker_timeout_ms=600_000,
            max_holding_ms=600_000,
            **base,  # type: ignore[arg-type]
        ),
        60_000,
    )
    book.on_candle(Candle("BTCUSDT", MINUTE, 60_000, 100, 100.5, 99.5, 100, 1.0))
    return book


def test_state_round_trips_through_json() -> None:
    book = sample_book()
    assert [p.status for p in book.positions] == [PositionStatus.ACTIVE, PositionStatus.PENDING]
    restored = PositionBook.from_dict(json.loads(json.dumps(book.to_dict())))
    assert restored.positions == book.positions
    assert restored.to_dict() == book.to_dict()
    assert restored.positions[0].request.strategy_hash == "h1"


def test_a_reloaded_config_keeps_the_open_positions_barriers() -> None:
    restored = PositionBook.from_dict(sample_book().to_dict())
    restored.max_open_positions = 5
    restored.fees = FeeSchedule(0.0, 0.0)
    assert restored.positions[0].take_profit_price == pytest.approx(102.0)


def test_bad_state_is_refused_with_a_message() -> None:
    state = sample_book().to_dict()
    with pytest.raises(StateError, match="version"):
        PositionBook.from_dict(state | {"version": 99})
    with pytest.raises(StateError, match="lacks 'next_seq'"):
        PositionBook.from_dict({k: v for k, v in state.items() if k != "next_seq"})
    broken = json.loads(json.dumps(state))
    broken["positions"][0]["surprise"] = 1
    with pytest.raises(StateError, match=r"Position: unknown fields \['surprise'\]"):
        PositionBook.from_dict(broken)
    broken = json.loads(json.dumps(state))
    broken["positions"][0]["entry"]["status"] = "lost"
    with pytest.raises(StateError, match="OrderState"):
        PositionBook.from_dict(broken)
    with pytest.raises(StateError, match="does not fit"):
        PositionBook.from_dict(state | {"next_seq": 1})
