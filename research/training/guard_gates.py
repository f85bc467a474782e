"""Promotion gates that guard the pipeline itself rather than judge the model's figures.

`no_lookahead` runs the look-ahead check (research/backtest/lookahead.py) of the spec's
strategy with the candidate model on its validation window: a model or strategy whose past
answers change when future candles are appended looks better in every backtest than it can
ever be live, so it is refused however good its figures. `champion_not_pinned` refuses to
move a champion an operator pinned (tradepipe models pin): the decision is still recorded,
with the pin's reason, instead of failing at the alias move.
"""

from __future__ import annotations

from collections.abc import Mapping

from research.backtest.errors import BacktestError
from research.backtest.lookahead import Predict, check_lookahead
from research.training.context import StepContext
from research.training.evaluate import Window
from research.training.gates import GateResult
from tradepipe.model_ops import pin_of
from tradepipe.registry import SHADOW_STARTED_TAG, ModelVersionInfo

__all__ = ["champion_not_pinned", "no_lookahead"]

_SHOWN_FINDINGS = 3  # a gate's detail is one line; the CLI shows the full report


def no_lookahead(context: StepContext, window: Window, predict: Predict) -> GateResult:
    spec = context.spec
    name, cuts = "no_lookahead", spec.gates.lookahead_cuts
    try:
        report = check_lookahead(
            context.dataset.candles.iloc[window.first : window.stop],
            context.strategy,
            spec.bot_config,
            timeframe=spec.parsed_timeframe,
            symbol=spec.symbol,
            parameters=spec.strategy.parameters,
            feature_spec=spec.features,
            predict=predict,
            fees=context.costs.fees,
            cuts=cuts,
        )
    except BacktestError as error:
        return GateResult(name, False, None, 0.0, f"the look-ahead check could not run: {error}")
    findings = len(report.features) + len(report.probabilities_changed) + len(report.decisions)
    head = f"{len(report.cuts)} cuts over {report.candles} candles, "
    head += f"{report.decisions_checked} decisions compared"
    if report.passed:
        return GateResult(name, True, 0.0, 0.0, f"{head}: nothing in the past changed")
    lines = report.summary().splitlines()[1:]
    shown = "; ".join(line.strip() for line in lines[:_SHOWN_FINDINGS])
    more = f" (and {len(lines) - _SHOWN_FINDINGS} more)" if len(lines) > _SHOWN_FINDINGS else ""
    detail = f"{head}: {shown}{more}; see tradepipe research lookahead --strategy ..."
    return GateResult(name, False, float(findings), 0.0, detail)


def champion_not_pinned(model_tags: Mapping[str, str]) -> GateResult:
    pin = pin_of(model_tags)
    if pin is None:
        return GateResult("champion_not_pinned", True, None, None, "the champion is not pinned")
    detail = f"pinned at version {pin.version} by {pin.by or 'an operator'} ({pin.reason}) "
    detail += "until tradepipe models unpin"
    return GateResult("champion_not_pinned", False, None, None, detail)


def no_challenger_in_shadow(
    challenger: ModelVersionInfo | None, candidate: ModelVersionInfo
) -> GateResult:
    """Shadow mode: a challenger in shadow is judged (shadow_gate.py) before another one
    replaces it, or a frequent schedule would never let one run its `min_days`."""
    name = "no_challenger_in_shadow"
    if challenger is None or SHADOW_STARTED_TAG not in challenger.tags:
        return GateResult(name, True, None, None, "no challenger in shadow")
    if challenger.version == candidate.version:
        return GateResult(name, True, None, None, "it is the challenger in shadow already")
    since = challenger.tags[SHADOW_STARTED_TAG]
    detail = (
        f"version {challenger.version} is in shadow since {since}: the shadow gate judges it first"
    )
    return GateResult(name, False, None, None, detail)
