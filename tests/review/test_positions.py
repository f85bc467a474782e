"""Live positions matched with backtest positions by entry candle; each price difference
attributed to slippage, latency, the fill model or the entry price; unmatched positions
listed with the cause found in the decisions."""

from __future__ import annotations

from dataclasses import replace

from research.review.compare import DecisionAnswer
from research.review.positions import (
    ReviewedPosition,
    attribute_price,
    entry_candle,
    match_positions,
)

T0 = 1_704_067_200_000
STEP = 5_000


def position(candle: int, **changes: object) -> ReviewedPosition:
    values: dict[str, object] = {
        "entry_candle_ms": candle,
        "entry_type": "market",
        "entry_price": 100.0,
        "entry_time_ms": candle + STEP,
        "exit_reason": "take_profit",
        "exit_price": 100.1,
        "exit_time_ms": candle + 3 * STEP,
        "exit_type": "limit",
        "take_profit_price": 100.1,
        "stop_loss_price": 99.9,
    }
    values.update(changes)
    return ReviewedPosition(**values)  # type: ignore[arg-type]


def backtest(candle: int, **changes: object) -> ReviewedPosition:
    windows = {
        "entry_window": (candle + STEP, candle + 2 * STEP),
        "exit_window": (candle + 2 * STEP, candle + 3 * STEP),
        "entry_time_ms": candle + STEP,
    }
    return position(candle, **{**windows, **changes})


def test_entry_candle_is_the_latest_entry_decided_by_then() -> None:
    decisions = [(T0 + STEP, T0), (T0 + 3 * STEP, T0 + 2 * STEP)]
    assert entry_candle(T0 + 2 * STEP, decisions) == T0
    assert entry_candle(T0 + 3 * STEP, decisions) == T0 + 2 * STEP
    assert entry_candle(T0, decisions) is None


def test_each_price_difference_gets_one_cause() -> None:
    window = (T0 + STEP, T0 + 2 * STEP)
    common = {"backtest_price": 100.0, "backtest_window": window}
    same = attribute_price(
        live_price=100.0,
        live_time_ms=T0 + STEP,
        live_type="market",
        backtest_type="market",
        **common,  # type: ignore[arg-type]
    )
    assert same is None
    slipped = attribute_price(
        live_price=100.02,
        live_time_ms=T0 + STEP + 300,
        live_type="market",
        backtest_type="market",
        **common,  # type: ignore[arg-type]
    )
    assert slipped == "slippage: +2.00 bps from the candle price the backtest used (100.0)"
    late = attribute_price(
        live_price=100.3,
        live_time_ms=T0 + 2 * STEP + 700,
        live_type="market",
        backtest_type="market",
        **common,  # type: ignore[arg-type]
    )
    assert late is not None and late.startswith("latency: filled live on a later trade, 700 ms")
    other_rule = attribute_price(
        live_price=99.9,
        live_time_ms=T0 + STEP,
        live_type="limit",
        backtest_type="market",
        **common,  # type: ignore[arg-type]
    )
    assert other_rule == "fill model: a limit order live, a market order in the backtest"
    barrier = attribute_price(
        live_price=100.2,
        live_time_ms=T0 + STEP,
        live_type="limit",
        backtest_type="limit",
        at_barrier=True,
        **common,  # type: ignore[arg-type]
    )
    assert barrier is not None and barrier.startswith("entry price")


def test_matched_pairs_compare_entry_exit_and_reason() -> None:
    live = [
        position(T0),  # identical
        position(
            T0 + 10 * STEP,
            entry_price=100.02,
            entry_time_ms=T0 + 11 * STEP + 200,
            take_profit_price=100.12002,
            exit_price=100.12002,
        ),
        position(T0 + 20 * STEP, exit_reason="stop_loss", exit_price=99.9, exit_type="market"),
    ]
    theirs = [backtest(T0), backtest(T0 + 10 * STEP), backtest(T0 + 20 * STEP)]
    matches, unmatched = match_positions(live, theirs, live_decisions={}, backtest_decisions={})
    assert len(matches) == 3 and unmatched == ()
    assert matches[0].divergences == ()
    second = {d.kind: d for d in matches[1].divergences}
    assert set(second) == {"entry_price", "exit_price"}
    assert second["entry_price"].cause.startswith("slippage: +2.00 bps")
    assert second["exit_price"].cause.startswith("entry price")  # the same barrier distance
    [reason] = matches[2].divergences
    assert reason.kind == "exit_reason" and reason.detail == "live stop_loss backtest take_profit"
    assert reason.cause.startswith("fill model")


def test_exit_reasons_that_follow_from_another_entry_and_open_ends() -> None:
    live = [
        position(T0, entry_price=100.05, exit_reason="timeout", exit_price=100.0),
        position(T0 + 10 * STEP, exit_reason=None, exit_price=None, exit_time_ms=None),
    ]
    theirs = [backtest(T0), backtest(T0 + 10 * STEP)]
    matches, _ = match_positions(live, theirs, live_decisions={}, backtest_decisions={})
    first = {d.kind: d.cause for d in matches[0].divergences}
    assert first["exit_reason"].startswith("entry price: the barriers were set")
    [open_end] = matches[1].divergences
    assert open_end.cause == "latency: still open at the end of the range on one side"


def test_an_entry_filled_on_one_side_only() -> None:
    waiting = position(
        T0,
        entry_price=None,
        entry_time_ms=None,
        exit_reason=None,
        exit_price=None,
        exit_time_ms=None,
    )
    [match], _ = match_positions(
        [waiting], [backtest(T0)], live_decisions={}, backtest_decisions={}
    )
    divergence = next(d for d in match.divergences if d.kind == "entry_fill")
    assert divergence.cause.startswith("latency")
    cancelled = replace(waiting, exit_reason="maker_timeout", exit_time_ms=T0 + 4 * STEP)
    [match], _ = match_positions(
        [cancelled], [backtest(T0)], live_decisions={}, backtest_decisions={}
    )
    divergence = next(d for d in match.divergences if d.kind == "entry_fill")
    assert divergence.cause.startswith("fill model")


def test_unmatched_positions_name_their_cause() -> None:
    enter, hold = DecisionAnswer("enter"), DecisionAnswer("hold")
    live = [position(T0), position(T0 + 10 * STEP), position(T0 + 20 * STEP)]
    theirs = [
        backtest(T0 + 30 * STEP),
        backtest(T0 + 40 * STEP),
        backtest(T0 + 50 * STEP),
        backtest(T0 + 60 * STEP),
    ]
    matches, unmatched = match_positions(
        live,
        theirs,
        live_decisions={
            T0 + 40 * STEP: (hold, None),
            T0 + 50 * STEP: (enter, "blocked"),
            T0 + 60 * STEP: (enter, "placed"),
        },
        backtest_decisions={T0 + 10 * STEP: hold, T0 + 20 * STEP: enter},
    )
    assert matches == ()
    causes = {(d.kind, d.time): d.cause for d in unmatched}
    assert causes == {
        (
            "position_live_only",
            "2024-01-01T00:00:00.000Z",
        ): "the backtest took no decision on its entry candle",
        (
            "position_live_only",
            "2024-01-01T00:00:50.000Z",
        ): "the decisions differ on its entry candle (see the decision divergences)",
        (
            "position_live_only",
            "2024-01-01T00:01:40.000Z",
        ): "the backtest entered too but held no slot (an earlier position differs)",
        (
            "position_backtest_only",
            "2024-01-01T00:02:30.000Z",
        ): "the engine took no decision on its entry candle",
        (
            "position_backtest_only",
            "2024-01-01T00:03:20.000Z",
        ): "the decisions differ on its entry candle (see the decision divergences)",
        (
            "position_backtest_only",
            "2024-01-01T00:04:10.000Z",
        ): "the engine did not place the entry (blocked)",
        (
            "position_backtest_only",
            "2024-01-01T00:05:00.000Z",
        ): "the engine placed the entry but has no position for it in the database",
    }
    assert [d.time for d in unmatched] == sorted(d.time for d in unmatched)
