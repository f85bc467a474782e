"""Promotion gates: pure functions from figures to a decision, each gate explaining itself.

A missing figure (NaN: no trades, hence no Sharpe) fails its gate rather than passing it
silently: a model that did not trade has not shown it can.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from research.training.spec import GatesSection

__all__ = [
    "ChampionComparison",
    "GateResult",
    "evaluate_gates",
    "failed_reasons",
    "jsonable",
]


@dataclass(frozen=True, slots=True)
class GateResult:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {key: jsonable(value) for key, value in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class ChampionComparison:
    """The candidate's and the champion's backtest figures on the candidate's window.

    `champion_version` None means there is no champion; `champion` None with a version means
    it could not be evaluated (`note` says why) and the candidate replaces it."""

    candidate: Mapping[str, float]
    champion: Mapping[str, float] | None
    champion_version: str | None
    note: str = ""


def evaluate_gates(
    gates: GatesSection, walk_forward: Mapping[str, float], comparison: ChampionComparison
) -> list[GateResult]:
    results = [
        _at_least("min_trades", walk_forward.get("wf/trades_total"), gates.min_trades, "trades"),
    ]
    if gates.min_sharpe is not None:
        sharpe = walk_forward.get("wf/sharpe_median")
        results.append(_at_least("min_sharpe", sharpe, gates.min_sharpe, "median fold Sharpe"))
    if gates.min_profit_factor is not None:
        factor = walk_forward.get("wf/profit_factor_median")
        results.append(
            _at_least("min_profit_factor", factor, gates.min_profit_factor, "median profit factor")
        )
    drawdown = walk_forward.get("wf/max_drawdown_worst", math.nan)
    results.append(
        GateResult(
            "max_drawdown",
            math.isfinite(drawdown) and drawdown <= gates.max_drawdown,
            drawdown,
            gates.max_drawdown,
            f"worst fold drawdown {drawdown:.2%} (limit {gates.max_drawdown:.2%})",
        )
    )
    results.append(_beats_champion(gates, comparison))
    return results


def failed_reasons(results: Sequence[GateResult]) -> list[str]:
    return [f"{result.name}: {result.detail}" for result in results if not result.passed]


def _at_least(name: str, value: float | None, threshold: float, what: str) -> GateResult:
    figure = math.nan if value is None else float(value)
    passed = not math.isnan(figure) and figure >= threshold
    shown = "none" if math.isnan(figure) else f"{figure:.4g}"
    return GateResult(
        name, passed, figure, float(threshold), f"{what} {shown} (needs >= {threshold:g})"
    )


def _beats_champion(gates: GatesSection, comparison: ChampionComparison) -> GateResult:
    metric, margin = gates.compare_metric, gates.min_improvement
    name = "beats_champion"
    if comparison.champion_version is None:
        return GateResult(name, True, None, margin, "no champion yet")
    if comparison.champion is None:
        return GateResult(
            name,
            True,
            None,
            margin,
            f"champion version {comparison.champion_version} not comparable: {comparison.note}",
        )
    mine = comparison.candidate.get(metric, math.nan)
    theirs = comparison.champion.get(metric, math.nan)
    versus = f"{metric} {_show(mine)} vs champion version {comparison.champion_version}'s "
    versus += f"{_show(theirs)} on the same window (needs +{margin:g})"
    if math.isnan(mine):
        return GateResult(name, False, None, margin, versus)
    if math.isnan(theirs):
        return GateResult(name, True, None, margin, versus + "; the champion did not trade")
    gain = 0.0 if math.isinf(mine) and mine == theirs else mine - theirs
    return GateResult(name, gain >= margin, gain, margin, versus)


def _show(value: float) -> str:
    return "none" if math.isnan(value) else f"{value:.4g}"


def jsonable(value: Any) -> Any:
    """`value` with NaN as null and infinities as text, through mappings and lists: JSON has
    neither (PostgreSQL's JSON columns refuse them)."""
    if isinstance(value, Mapping):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value
