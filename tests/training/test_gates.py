"""Promotion gates as pure functions: thresholds, missing figures, champion comparison."""

from __future__ import annotations

import math

from research.training.gates import ChampionComparison, evaluate_gates, failed_reasons, jsonable
from research.training.spec import GatesSection
from research.training.walkforward import FoldResult, aggregate_folds

GATES = GatesSection(min_trades=10, min_sharpe=0.5, max_drawdown=0.2, min_improvement=0.1)
GOOD = {"wf/trades_total": 40.0, "wf/sharpe_median": 1.2, "wf/max_drawdown_worst": 0.05}


def comparison(mine: float, theirs: float | None, version: str | None = "1") -> ChampionComparison:
    champion = None if theirs is None else {"sharpe": theirs}
    return ChampionComparison({"sharpe": mine}, champion, version)


def decide(walk_forward: dict[str, float], versus: ChampionComparison) -> dict[str, bool]:
    return {gate.name: gate.passed for gate in evaluate_gates(GATES, walk_forward, versus)}


def test_a_good_candidate_passes_every_gate() -> None:
    assert all(decide(GOOD, comparison(2.0, 1.5)).values())
    assert all(decide(GOOD, comparison(2.0, None, version=None)).values())


def test_each_threshold_refuses_on_its_own() -> None:
    assert not decide(GOOD | {"wf/trades_total": 9.0}, comparison(2, 1))["min_trades"]
    assert not decide(GOOD | {"wf/sharpe_median": 0.4}, comparison(2, 1))["min_sharpe"]
    assert not decide(GOOD | {"wf/max_drawdown_worst": 0.3}, comparison(2, 1))["max_drawdown"]
    assert not decide(GOOD, comparison(1.55, 1.5))["beats_champion"], "margin 0.1 not met"


def test_a_missing_figure_fails_its_gate() -> None:
    results = evaluate_gates(GATES, GOOD | {"wf/sharpe_median": math.nan}, comparison(2, 1))
    assert failed_reasons(results) == ["min_sharpe: median fold Sharpe none (needs >= 0.5)"]
    assert not decide(GOOD, comparison(math.nan, 1.0))["beats_champion"]
    assert decide(GOOD, comparison(1.0, math.nan))["beats_champion"], "champion did not trade"


def test_an_unloadable_champion_does_not_block_its_replacement() -> None:
    versus = ChampionComparison({"sharpe": 1.0}, None, "3", note="cannot load")
    gate = evaluate_gates(GATES, GOOD, versus)[-1]
    assert gate.passed and "champion version 3 not comparable: cannot load" in gate.detail


def test_folds_without_trades_count_as_the_worst_in_the_median() -> None:
    def fold(number: int, trades: float, sharpe: float) -> FoldResult:
        metrics = {"bt/trades": trades, "bt/sharpe": sharpe, "bt/max_drawdown": 0.01}
        return FoldResult(number, 100, 100, 0, 1, 5, metrics | {"auc": 0.6})

    folds = [fold(1, 0, math.nan), fold(2, 0, math.nan), fold(3, 12, 3.0)]
    aggregate = aggregate_folds(folds)
    assert math.isnan(aggregate["wf/sharpe_median"])
    assert aggregate["wf/trades_total"] == 12 and aggregate["wf/auc_mean"] == 0.6


def test_json_has_no_nan_or_infinity() -> None:
    assert jsonable({"a": [math.nan, math.inf], "b": 1.5}) == {"a": [None, "inf"], "b": 1.5}
