"""Guard rails, the pure part: the exact binomial test against scipy, the judgement's edges
(too few outcomes, the evidence budget, entries only for precision, a bound at or below 0,
no reference), drawdown and drift, and the rails' validation with clear errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy.stats import binom

from tradepipe.guard import (
    BINOMIAL_TEST,
    GuardRails,
    MaturedCalls,
    binomial_p_value,
    drawdown_pct,
    judge,
    matured_calls,
)
from tradepipe.quality import QualityError

VALIDATION = {"hit_rate": 0.6, "precision_at_threshold": 0.6}


def calls(take_profit: list[bool], entered: list[bool] | None = None) -> MaturedCalls:
    wins = np.asarray(take_profit, dtype=bool)
    enter = np.ones(len(wins), dtype=bool) if entered is None else np.asarray(entered, dtype=bool)
    return MaturedCalls(np.arange(len(wins), dtype=np.int64) * 1000, enter, wins)


def rails(**changes: object) -> GuardRails:
    values: dict[str, object] = {
        "min_outcomes": 20,
        "budget_outcomes": 40,
        "alpha": 0.05,
        "precision_margin": 0.1,
    }
    return GuardRails.model_validate(values | changes)


@settings(max_examples=200, deadline=None)
@given(
    trials=st.integers(0, 400),
    fraction=st.floats(0, 1),
    rate=st.floats(0.001, 0.999),
)
def test_the_binomial_p_value_is_scipys_cdf(trials: int, fraction: float, rate: float) -> None:
    successes = round(trials * fraction)
    expected = float(binom.cdf(successes, trials, rate))
    assert binomial_p_value(successes, trials, rate) == pytest.approx(expected, rel=1e-7, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(trials=st.integers(1, 200), rate=st.floats(0.01, 0.99))
def test_more_successes_never_lower_the_p_value(trials: int, rate: float) -> None:
    values = [binomial_p_value(k, trials, rate) for k in range(trials + 1)]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(values))
    assert values[-1] == pytest.approx(1.0)


def test_binomial_edges() -> None:
    assert binomial_p_value(0, 0, 0.5) == 1.0
    assert binomial_p_value(3, 10, 0.0) == 1.0  # nothing to fall below
    assert binomial_p_value(9, 10, 1.0) == 0.0 and binomial_p_value(10, 10, 1.0) == 1.0
    with pytest.raises(ValueError, match="11 successes of 10 trials"):
        binomial_p_value(11, 10, 0.5)


def test_a_champion_at_its_validation_figures_holds() -> None:
    holding = calls([i % 5 != 0 for i in range(40)])  # 80 % take-profits, validation 60 %
    assert judge(rails(), holding, VALIDATION) == ()


def test_a_decayed_champion_breaches_with_its_evidence() -> None:
    [breach] = judge(rails(), calls([i % 5 == 0 for i in range(40)]), VALIDATION)
    assert breach.rail == "precision" and breach.test == BINOMIAL_TEST
    assert (breach.outcomes, breach.successes) == (40, 8)
    assert breach.live == pytest.approx(0.2) and breach.limit == pytest.approx(0.5)
    assert breach.p_value == pytest.approx(binom.cdf(8, 40, 0.5)) and breach.p_value < 0.05
    assert "below validation 0.600" in breach.summary and "p = " in breach.summary
    assert breach.to_dict()["summary"] == breach.summary


def test_no_verdict_on_fewer_than_min_outcomes() -> None:
    assert judge(rails(), calls([False] * 19), VALIDATION) == ()
    assert len(judge(rails(), calls([False] * 20), VALIDATION)) == 1


def test_old_good_outcomes_cannot_hide_a_decay_beyond_the_budget() -> None:
    history = [True] * 1000 + [False] * 40  # a long good past, then the budget all bad
    [breach] = judge(rails(), calls(history), VALIDATION)
    assert breach.outcomes == 40 and breach.successes == 0
    # judged over everything, the past would have hidden it
    assert judge(rails(budget_outcomes=1040), calls(history), VALIDATION) == ()


def test_precision_counts_the_entries_only() -> None:
    # 40 matured calls, only 10 entries (all losers): too few entries for a verdict
    entered = [i < 10 for i in range(40)]
    assert judge(rails(), calls([False] * 40, entered), VALIDATION) == ()
    # the hit rate counts every call: 30 right "no entry" calls and 10 wrong entries
    assert judge(rails(hit_rate_margin=0.1), calls([False] * 40, entered), VALIDATION) == ()


def test_the_hit_rate_rail() -> None:
    entered = [True] * 40  # enters always, wins 4 of 40: hit rate 0.1
    only_hit_rate = rails(hit_rate_margin=0.2, precision_margin=None)
    [breach] = judge(only_hit_rate, calls([i < 4 for i in range(40)], entered), VALIDATION)
    assert breach.rail == "hit_rate" and breach.limit == pytest.approx(0.4)


def test_no_binomial_verdict_without_a_reference_or_a_bound_above_zero() -> None:
    decayed = calls([False] * 40)
    assert judge(rails(), decayed, None) == ()
    assert judge(rails(), decayed, {"precision_at_threshold": math.nan}) == ()
    assert judge(rails(precision_margin=0.6), decayed, VALIDATION) == ()  # bound 0


def test_drawdown_and_drift() -> None:
    rail = rails(max_drawdown_pct=5.0, max_psi=0.25)
    none = calls([])
    assert judge(rail, none, None, drawdowns={"a": 4.9}, max_feature_psi=0.3, decisions=19) == ()
    breaches = judge(rail, none, None, drawdowns={"b": 6.0, "a": 1.0}, max_feature_psi=0.3,
                     decisions=20)  # fmt: skip
    assert [b.rail for b in breaches] == ["drawdown", "drift"]
    assert breaches[0].subject == "b" and "6.00 %" in breaches[0].summary
    assert "max PSI 0.300" in breaches[1].summary


def test_drawdown_pct() -> None:
    assert drawdown_pct([], 1000) == 0.0
    assert drawdown_pct([10, 20, 5], 1000) == 0.0
    assert drawdown_pct([-10], 1000) == pytest.approx(1.0)  # from 0: the first loss counts
    assert drawdown_pct([30, -10, -30, 20, -5], 100) == pytest.approx(40.0)
    with pytest.raises(ValueError, match="capital must be positive"):
        drawdown_pct([1.0], 0)


@given(st.lists(st.floats(-1e3, 1e3), max_size=50))
def test_drawdown_is_never_negative_and_bounded_by_the_losses(pnls: list[float]) -> None:
    found = drawdown_pct(pnls, 100.0)
    assert 0 <= found <= sum(-p for p in pnls if p < 0) + 1e-9


def test_matured_calls_of_live_outcomes() -> None:
    config = '{"confidence_threshold": 0.5}'
    outcomes = pd.DataFrame(
        {
            "candle_start_ms": [3000, 1000, 2000, 4000],
            "probability": [0.9, 0.2, None, 0.7],
            "label": [1, 0, 1, -1],  # the last has not matured
            "bot_config": [config] * 4,
        }
    )
    found = matured_calls(outcomes)
    assert found.candle_start_ms.tolist() == [1000, 3000]
    assert found.entered.tolist() == [False, True] and found.take_profit.tolist() == [False, True]
    assert len(found.since(2000)) == 1 and len(found.latest(1)) == 1


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"min_outcomes": 10}, "set at least one rail"),
        ({"precision_margin": 0.1, "min_outcomes": 50, "budget_outcomes": 10},
         "budget_outcomes (10) must be at least min_outcomes (50)"),
        ({"precision_margin": 1.5}, "precision_margin"),
        ({"precision_margin": 0.1, "alpha": 0.0}, "alpha"),
        ({"precision_margin": 0.1, "max_outcome": 3}, "max_outcome"),
    ],
)  # fmt: skip
def test_bad_rails_are_refused(values: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        GuardRails.model_validate(values)
    assert fragment in str(caught.value)


def test_rails_round_trip_through_a_tag() -> None:
    kept = rails(hit_rate_margin=0.05, max_psi=0.5)
    assert GuardRails.from_tag(kept.to_tag()) == kept
    with pytest.raises(QualityError, match="unreadable guard_rails tag"):
        GuardRails.from_tag('{"min_outcomes": 0}')
    with pytest.raises(QualityError, match="unreadable guard_rails tag"):
        GuardRails.from_tag("not json")
