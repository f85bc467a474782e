"""The kernel's risk layer (tradepipe/risk.py), pure: what counts as loss, the day rollover
at 00:00 UTC, the equity peak, exposure, the caps, the circuit breaker, the saved state."""

from __future__ import annotations

import pytest

from tradepipe.botconfig import BotConfigError, parse_bot_config
from tradepipe.enums import OrderType
from tradepipe.orders import (
    EntryRequest,
    FeeSchedule,
    OrderCancelRequested,
    OrderPlaced,
    Position,
    PositionBook,
    PositionClosed,
)
from tradepipe.risk import (
    DAILY_LOSS,
    DAY_MS,
    MAX_DRAWDOWN,
    BotRisk,
    CircuitBreaker,
    RiskLimits,
    exposure,
    utc_day,
)

DAY0 = 20_000 * DAY_MS  # 2024-10-04T00:00:00Z
HOUR = 3_600_000
ENTRY = EntryRequest(
    order_type=OrderType.MARKET,
    capital=1_000.0,
    take_profit_pct=10.0,
    stop_loss_pct=10.0,
    max_holding_ms=DAY_MS,
)


def live_book() -> PositionBook:
    fees = FeeSchedule(maker_rate=0.0, taker_rate=0.001)
    return PositionBook("bot1", "BTCUSDT", max_open_positions=10, fees=fees, simulated=False)


def entered(book: PositionBook, time_ms: int, price: float = 100.0) -> Position:
    [placed] = [e for e in book.submit_entry(ENTRY, time_ms) if isinstance(e, OrderPlaced)]
    book.on_fill(placed.order.client_order_id, price, time_ms, quantity=10.0)
    position = book.position(placed.position_seq)
    assert position is not None
    return position


def closed(gross: float, at_ms: int, book: PositionBook | None = None) -> Position:
    """A position of 10 units bought at 100 and sold at 100 + gross / 10 at `at_ms`
    (taker fee 0.1 % on both fills)."""
    book = book or live_book()
    position = entered(book, at_ms - 60_000)
    events = book.close_position(position.seq, at_ms)
    for event in events:  # the resting take-profit goes first
        if isinstance(event, OrderCancelRequested):
            events = book.on_cancelled(event.order.client_order_id, at_ms)
    [exit_order] = [e for e in events if isinstance(e, OrderPlaced)]
    events = book.on_fill(exit_order.order.client_order_id, 100.0 + gross / 10, at_ms)
    [done] = [e for e in events if isinstance(e, PositionClosed)]
    return done.position


def limits(**values: float) -> RiskLimits:
    return RiskLimits(base_capital=1_000.0, **values)


def test_loss_is_the_realised_net_pnl_after_fees_of_positions_closed_that_day() -> None:
    risk = BotRisk("bot1")
    position = closed(-20.0, DAY0 + HOUR)
    fees = position.fees
    assert fees == pytest.approx(1.0 + 0.98)  # 0.1 % of 1000 in, of 980 out
    assert risk.on_close(position, limits()) is None
    assert risk.day == utc_day(DAY0)
    assert risk.day_pnl == pytest.approx(-20.0 - fees)
    # an open position's unrealised loss does not count
    book = live_book()
    entered(book, DAY0 + 2 * HOUR, price=100.0)
    assert risk.day_pnl == pytest.approx(-20.0 - fees)


def test_the_daily_limit_is_hit_at_the_limit_and_lifts_at_the_next_utc_day() -> None:
    risk = BotRisk("bot1")
    rules = limits(daily_loss_limit=30.0)
    assert risk.on_close(closed(-10.0, DAY0 + HOUR), rules) is None
    assert risk.halt(DAY0 + HOUR) is None
    breach = risk.on_close(closed(-18.0, DAY0 + 2 * HOUR), rules)  # -28 - fees < -30
    assert breach is not None and breach.limit == DAILY_LOSS
    assert breach.until_ms == DAY0 + DAY_MS
    assert breach.figures["day_pnl"] == pytest.approx(risk.day_pnl)
    assert breach.figures["daily_loss_limit"] == 30.0
    assert "daily loss limit hit" in breach.message
    # reported once; entries refused for the rest of the day, to the last millisecond
    assert risk.check(rules, DAY0 + 3 * HOUR) is None
    assert risk.halt(DAY0 + DAY_MS - 1) == DAILY_LOSS
    refusal = risk.entry_refusal(rules, DAY0 + DAY_MS - 1, 100.0, symbol_exposure=0.0)
    assert refusal is not None and refusal.startswith("daily_loss_limit")
    # a new UTC day: entries again, and the day's loss starts from zero
    assert risk.halt(DAY0 + DAY_MS) is None
    assert risk.entry_refusal(rules, DAY0 + DAY_MS, 100.0, symbol_exposure=0.0) is None
    assert risk.on_close(closed(5.0, DAY0 + DAY_MS + HOUR), rules) is None
    assert risk.day == utc_day(DAY0) + 1
    assert risk.day_pnl == pytest.approx(5.0 - closed(5.0, DAY0).fees)
    # a second day may be stopped again, and is reported again
    again = risk.on_close(closed(-40.0, DAY0 + DAY_MS + 2 * HOUR), rules)
    assert again is not None and again.until_ms == DAY0 + 2 * DAY_MS


def test_exactly_at_the_limit_stops_and_a_profit_does_not_undo_the_stop() -> None:
    risk = BotRisk("bot1", day=utc_day(DAY0), day_pnl=-29.0)
    rules = limits(daily_loss_limit=30.0)
    assert risk.check(rules, DAY0) is None
    risk.day_pnl = -30.0
    assert risk.check(rules, DAY0) is not None
    risk.day_pnl = 10.0  # a later profit the same day
    assert risk.halt(DAY0 + HOUR) == DAILY_LOSS


def test_a_lowered_limit_stops_at_the_next_check_without_a_new_close() -> None:
    risk = BotRisk("bot1")
    risk.on_close(closed(-20.0, DAY0 + HOUR), limits(daily_loss_limit=100.0))
    breach, refusal = risk.admit(
        limits(daily_loss_limit=10.0), DAY0 + 2 * HOUR, 100.0, symbol_exposure=0.0
    )
    assert breach is not None and breach.limit == DAILY_LOSS
    assert refusal is not None


def test_drawdown_is_measured_from_the_equity_peak_and_waits_for_an_operator() -> None:
    risk = BotRisk("bot1")
    rules = limits(max_drawdown_pct=5.0)  # base capital 1000
    book = live_book()
    risk.on_close(closed(100.0, DAY0 + HOUR, book), rules)  # equity ~1098: the new peak
    peak = risk.peak_realised
    assert peak == risk.realised > 95
    assert risk.on_close(closed(-40.0, DAY0 + 2 * HOUR, book), rules) is None  # ~3.8 %
    assert risk.peak_realised == peak
    assert 3.5 < risk.drawdown_pct(rules) < 5.0
    breach = risk.on_close(closed(-20.0, DAY0 + 3 * HOUR, book), rules)
    assert breach is not None and breach.limit == MAX_DRAWDOWN and breach.until_ms is None
    assert breach.figures["peak_equity"] == pytest.approx(1_000.0 + peak)
    assert breach.figures["drawdown_pct"] >= 5.0
    assert "operator re-enables" in breach.message
    # not lifted by a new day or by profits
    risk.on_close(closed(30.0, DAY0 + DAY_MS + HOUR, book), rules)
    assert risk.halt(DAY0 + 5 * DAY_MS) == MAX_DRAWDOWN
    # an operator re-enables: the peak restarts at the current equity
    assert risk.rearm()
    assert risk.halt(DAY0 + 5 * DAY_MS) is None
    assert risk.peak_realised == risk.realised
    assert risk.drawdown_pct(rules) == 0.0
    assert not risk.rearm()  # not stopped: nothing changes


def test_no_limits_never_refuse() -> None:
    risk = BotRisk("bot1")
    rules = limits()
    for hour in range(1, 10):
        risk.on_close(closed(-90.0, DAY0 + hour * HOUR), rules)
    assert risk.halt(DAY0 + 10 * HOUR) is None
    assert risk.admit(rules, DAY0 + 10 * HOUR, 1e6, symbol_exposure=1e9) == (None, None)


def test_exposure_counts_pending_capital_and_the_remaining_quantity_at_entry() -> None:
    book = live_book()
    book.submit_entry(ENTRY, DAY0)  # pending: its capital
    entered(book, DAY0, price=90.0)  # active: 10 x 90
    assert exposure(book.positions) == pytest.approx(1_000.0 + 900.0)
    assert exposure(()) == 0.0


def test_exposure_caps_refuse_an_entry_that_would_pass_them() -> None:
    risk = BotRisk("bot1")
    rules = limits(max_symbol_exposure=1_000.0)
    assert risk.entry_refusal(rules, DAY0, 400.0, symbol_exposure=600.0) is None  # = cap
    refused = risk.entry_refusal(rules, DAY0, 400.01, symbol_exposure=600.0)
    assert refused is not None and refused.startswith("max_symbol_exposure")
    total = risk.entry_refusal(
        limits(),
        DAY0,
        400.0,
        symbol_exposure=0.0,
        total_exposure=1_700.0,
        max_total_exposure=2_000.0,
    )
    assert total is not None and total.startswith("max_total_exposure")


def test_the_circuit_breaker_opens_after_n_errors_and_closes_on_success_or_cool_down() -> None:
    breaker = CircuitBreaker(error_limit=3, cooldown_ms=60_000)
    assert not breaker.on_error(1_000, "503")
    assert not breaker.on_error(2_000, "503")
    assert breaker.on_error(3_000, "503")  # the third in a row opens it
    assert breaker.is_open and breaker.open_until_ms == 63_000
    assert not breaker.on_error(4_000, "503")  # already open: not opened again
    assert not breaker.poll(62_999)
    assert breaker.poll(63_000)  # cool-down over: closed, half-open
    assert not breaker.is_open
    assert breaker.on_error(64_000, "503")  # one more error opens it again
    assert breaker.on_success()  # a success closes it at once and clears the count
    assert not breaker.is_open and breaker.errors == 0
    assert not breaker.on_success()
    # a success between errors resets the run
    breaker.on_error(70_000, "x")
    breaker.on_error(71_000, "x")
    breaker.on_success()
    assert not breaker.on_error(72_000, "x")
    with pytest.raises(ValueError, match="error_limit"):
        CircuitBreaker(error_limit=0, cooldown_ms=1)


def test_the_ledger_survives_a_round_trip_and_refuses_a_bad_one() -> None:
    risk = BotRisk("bot1")
    rules = limits(max_drawdown_pct=1.0, daily_loss_limit=5.0)
    risk.on_close(closed(-50.0, DAY0 + HOUR), rules)
    again = BotRisk.from_dict(risk.to_dict())
    assert again == risk
    assert again.halt(DAY0 + 2 * HOUR) == MAX_DRAWDOWN
    with pytest.raises(ValueError, match="unknown version"):
        BotRisk.from_dict({"version": 99})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("daily_loss_limit", 0, "daily_loss_limit: Input should be greater than 0"),
        ("daily_loss_limit", -5, "daily_loss_limit"),
        ("daily_loss_limit", float("inf"), "daily_loss_limit"),
        ("max_drawdown_pct", 100.5, "max_drawdown_pct: Input should be less than or equal"),
        ("max_drawdown_pct", 0, "max_drawdown_pct"),
        ("max_symbol_exposure", 2e12, "max_symbol_exposure: Input should be less than"),
        ("max_symbol_exposure", "lots", "max_symbol_exposure"),
    ],
)
def test_bot_config_bounds_the_risk_fields(field: str, value: object, message: str) -> None:
    base = {
        "capital_per_trade": 100.0,
        "take_profit_pct": 1.0,
        "stop_loss_pct": 1.0,
        "max_holding_seconds": 60.0,
        "maker_order_timeout_seconds": 10.0,
    }
    assert parse_bot_config(base).daily_loss_limit is None  # no limit unless set
    with pytest.raises(BotConfigError, match=message):
        parse_bot_config({**base, field: value}, bot="b")
    config = parse_bot_config(
        {**base, "daily_loss_limit": 50, "max_drawdown_pct": 20, "max_symbol_exposure": 500}
    )
    assert RiskLimits.from_config(config) == RiskLimits(
        base_capital=100.0, daily_loss_limit=50, max_drawdown_pct=20, max_symbol_exposure=500
    )
