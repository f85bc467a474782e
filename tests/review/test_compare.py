"""The review's comparisons: features within the stated tolerance, probabilities, decisions
on the bot's live span, each divergence with the candle's time and a cause."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from research.review.compare import (
    FEATURE_TOLERANCE,
    DecisionAnswer,
    compare_decisions,
    compare_features,
    compare_probabilities,
    within_tolerance,
)

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
STEP = 5_000


def frame(values: list[list[float]], starts: list[int]) -> pd.DataFrame:
    return pd.DataFrame(values, columns=["a", "b"], index=pd.Index(starts))


def test_the_tolerance_is_absolute_below_one_and_relative_above() -> None:
    assert FEATURE_TOLERANCE == 1e-12
    assert within_tolerance(0.5, 0.5 + 0.9e-12)
    assert not within_tolerance(0.5, 0.5 + 2e-12)
    assert within_tolerance(1_000.0, 1_000.0 + 0.5e-9)  # 1e-12 of the value
    assert not within_tolerance(1_000.0, 1_000.0 + 2e-9)
    assert within_tolerance(math.nan, math.nan)
    assert not within_tolerance(1.0, math.nan) and not within_tolerance(math.nan, 1.0)


def test_equal_features_are_equal_and_report_the_largest_difference() -> None:
    starts = [T0, T0 + STEP, T0 + 2 * STEP]
    batch = frame([[1.0, 2.0], [1.5, 2.5], [1.25, 0.5]], starts)
    live = batch.iloc[1:].copy()
    live.iloc[0, 0] += 1e-13  # below the tolerance: not a divergence, but measured
    result = compare_features(live, batch)
    assert result.equal and result.compared == 2
    assert 0 < result.max_difference < FEATURE_TOLERANCE


def test_a_feature_that_differs_names_the_candle_and_the_feature() -> None:
    starts = [T0, T0 + STEP]
    batch = frame([[1.0, 2.0], [1.5, 2.5]], starts)
    live = frame([[1.0, 2.0], [1.5, 2.6]], starts)
    result = compare_features(live, batch)
    [divergence] = result.divergences
    assert (divergence.kind, divergence.time) == ("features", "2024-01-01T00:00:05.000Z")
    assert divergence.detail.startswith("b live 2.6 batch 2.5") and "a " not in divergence.detail
    assert "warm-up" in divergence.cause
    assert math.isclose(result.max_difference, 0.1)


def test_warm_up_nan_in_the_batch_and_unrecorded_candles_are_divergences() -> None:
    batch = frame([[np.nan, 2.0]], [T0])
    live = frame([[1.0, 2.0], [1.0, 2.0]], [T0, T0 + STEP])
    causes = [d.cause for d in compare_features(live, batch).divergences]
    assert "parity bug" in causes[0]
    assert causes[1] == "candle not recorded (evidence dropped or lost)"


def test_features_of_another_spec_are_one_divergence() -> None:
    live = pd.DataFrame([[1.0]], columns=["other"], index=pd.Index([T0]))
    result = compare_features(live, frame([[1.0, 2.0]], [T0]))
    [divergence] = result.divergences
    assert "other" in divergence.detail and divergence.cause.startswith("feature spec")


def test_probabilities_are_compared_by_candle() -> None:
    live = pd.Series([0.4, 0.6, np.nan], index=[T0, T0 + STEP, T0 + 2 * STEP])
    backtest = pd.Series([0.4, 0.61, np.nan], index=[T0, T0 + STEP, T0 + 2 * STEP])
    compared, divergences = compare_probabilities(live, backtest)
    assert compared == 3
    [divergence] = divergences
    assert divergence.time == "2024-01-01T00:00:05.000Z" and "0.61" in divergence.detail


def test_decisions_are_compared_on_the_live_span_with_causes() -> None:
    enter, hold = DecisionAnswer("enter"), DecisionAnswer("hold")
    live = {T0 + STEP: enter, T0 + 2 * STEP: hold, T0 + 4 * STEP: hold, T0 + 5 * STEP: hold}
    backtest = {
        T0: enter,  # before the bot was live: not compared
        T0 + STEP: enter,
        T0 + 2 * STEP: enter,  # differs
        T0 + 3 * STEP: hold,  # the engine took no decision
        T0 + 4 * STEP: hold,
        T0 + 5 * STEP: DecisionAnswer("enter", 99.5),
        T0 + 6 * STEP: enter,  # after: not compared
    }
    compared, agreeing, divergences = compare_decisions(live, backtest, {T0 + 5 * STEP: (1, 0)})
    assert (compared, agreeing) == (5, 2)
    by_time = {d.time: d for d in divergences}
    assert set(by_time) == {
        "2024-01-01T00:00:10.000Z",
        "2024-01-01T00:00:15.000Z",
        "2024-01-01T00:00:25.000Z",
    }
    clock = by_time["2024-01-01T00:00:10.000Z"]
    assert clock.detail == "live hold, backtest enter" and "wall clock" in clock.cause
    assert "did not decide" in by_time["2024-01-01T00:00:15.000Z"].cause
    full = by_time["2024-01-01T00:00:25.000Z"]
    assert full.detail == "live hold, backtest enter (limit 99.5)"
    assert full.cause.startswith("the open positions differed (live 1, backtest 0)")


def test_a_limit_price_that_differs_is_a_decision_divergence() -> None:
    live = {T0: DecisionAnswer("enter", 100.0)}
    _, agreeing, [divergence] = compare_decisions(live, {T0: DecisionAnswer("enter", 100.5)})
    assert agreeing == 0 and "limit 100.0" in divergence.detail


def test_no_live_decisions_compare_nothing() -> None:
    assert compare_decisions({}, {T0: DecisionAnswer("hold")}) == (0, 0, ())
