"""`evolve` makes the record `dataclasses.replace` makes, and refuses what it cannot copy."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradepipe.enums import ExitReason, OrderRole, OrderStatus, OrderType, PositionStatus, Side
from tradepipe.orders import EntryRequest, FeeSchedule, OrderFilled, OrderState, Position
from tradepipe.orders.evolve import evolve
from tradepipe.orders.types import Liquidity

ENTRY = OrderState(
    client_order_id="b-1-e",
    role=OrderRole.ENTRY,
    side=Side.BUY,
    order_type=OrderType.MARKET,
    status=OrderStatus.OPEN,
    placed_at_ms=1,
    updated_at_ms=1,
    quote_quantity=1_000.0,
)
REQUEST = EntryRequest(
    order_type=OrderType.MARKET,
    capital=1_000.0,
    take_profit_pct=1.0,
    stop_loss_pct=1.0,
    max_holding_ms=60_000,
)
POSITION = Position(
    bot="b",
    seq=1,
    symbol="BTCUSDT",
    side=Side.BUY,
    status=PositionStatus.PENDING,
    request=REQUEST,
    created_at_ms=1,
    entry=ENTRY,
)

order_changes = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(OrderStatus),
        "updated_at_ms": st.integers(0, 2**40),
        "price": st.none() | st.floats(allow_nan=False),
        "filled_quantity": st.floats(allow_nan=False),
        "resting": st.booleans(),
        "cancel_requested": st.booleans(),
        "reason": st.none() | st.text(max_size=5),
    },
)
position_changes = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(PositionStatus),
        "entry": st.builds(lambda changes: evolve(ENTRY, **changes), order_changes),
        "exits": st.lists(st.just(ENTRY), max_size=3).map(tuple),
        "take_profit_price": st.none() | st.floats(allow_nan=False),
        "trailing_stop_price": st.none() | st.floats(allow_nan=False),
        "exit_reason": st.none() | st.sampled_from(ExitReason),
        "pending_exit": st.none() | st.sampled_from(ExitReason),
    },
)


# generation is cheap; on the shared 2-core machine it can still be slow to start
LOADED_MACHINE = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


@LOADED_MACHINE
@given(order_changes)
def test_an_order_evolves_as_replace_makes_it(changes: dict[str, Any]) -> None:
    evolved = evolve(ENTRY, **changes)
    assert evolved == dataclasses.replace(ENTRY, **changes)
    assert type(evolved) is OrderState
    assert ENTRY.status is OrderStatus.OPEN and not ENTRY.resting  # the original is untouched


@LOADED_MACHINE
@given(position_changes)
def test_a_position_evolves_as_replace_makes_it(changes: dict[str, Any]) -> None:
    evolved = evolve(POSITION, **changes)
    assert evolved == dataclasses.replace(POSITION, **changes)
    assert hash(evolved) == hash(dataclasses.replace(POSITION, **changes))
    with pytest.raises(dataclasses.FrozenInstanceError):
        evolved.seq = 2  # type: ignore[misc]


def test_an_event_evolves_too() -> None:
    filled = OrderFilled(
        bot="b",
        time_ms=5,
        order=ENTRY,
        position_seq=1,
        price=10.0,
        quantity=1.0,
        fee=0.1,
        liquidity=Liquidity.TAKER,
    )
    assert evolve(filled, time_ms=6) == dataclasses.replace(filled, time_ms=6)


def test_an_unknown_field_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="OrderState has no field 'colour'"):
        evolve(ENTRY, colour="red")


@pytest.mark.parametrize(
    "record, message",
    [
        (REQUEST, "EntryRequest validates in __post_init__: use replace"),
        (FeeSchedule(), "FeeSchedule validates in __post_init__: use replace"),
        (("a", "tuple"), "evolve copies slotted dataclasses, not tuple"),
    ],
)
def test_records_evolve_cannot_copy_are_refused(record: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        evolve(record)
