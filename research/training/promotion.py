"""Promote step: gate a validated version and move `champion`, or record why not.

The candidate and the current champion are backtested on the same window (the candidate's
validation window, unseen by its training) with the same strategy, bot config and costs
(the venue's, raised by the spec's: `StepContext.costs`, recorded with the decision); each
model sees features from its own feature spec. Walk-forward figures decide the absolute
gates; the guard gates (guard_gates.py) refuse a candidate whose strategy or model looks
ahead on that window, and any move of a champion an operator pinned.
In shadow mode (`[promotion] mode = "shadow"`) a passing version becomes `challenger`
(tagged `shadow_started_at`, the decision row's alias `challenger`) and the champion stays:
the live engine runs it in shadow and the shadow gate (shadow_gate.py) judges it later; a
candidate is refused while another challenger is still in shadow. Every decision is
written in three places: a `model_promotions` row in the trading database (what the
dashboard and API read), tags on the model version, and tags and metrics on its training
run.

Idempotent, and safe to resume: the database row is written first and is the record of the
decision. Re-running finds it, re-applies the MLflow tags and, for a promotion, completes the
alias move if it had not happened, but only while the champion is still the version the
candidate beat; a newer decision is never undone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from mlflow import MlflowClient
from sqlalchemy.orm import Session

from research.training.context import StepContext
from research.training.evaluate import Predictor, Window, backtest_window, validation_split
from research.training.gates import (
    ChampionComparison,
    GateResult,
    evaluate_gates,
    failed_reasons,
    jsonable,
)
from research.training.guard_gates import (
    champion_not_pinned,
    no_challenger_in_shadow,
    no_lookahead,
)
from research.training.tracking import TAG_PREFIX, metric_key
from tradepipe.db import (
    ModelPromotion,
    PromotionDecision,
    create_engine_for,
    session_scope,
    upgrade_database,
)
from tradepipe.registry import (
    CHALLENGER,
    CHAMPION,
    LoadedModel,
    ModelPinnedError,
    ModelRegistry,
    ModelVersionInfo,
    RegistryError,
)

__all__ = ["PromotionOutcome", "promote_step"]

_BEATEN = "champion_version"


@dataclass(frozen=True)
class PromotionOutcome:
    model_name: str
    version: str
    run_id: str
    promoted: bool
    gates: tuple[GateResult, ...]
    champion_before: str | None  # the champion the decision was measured against
    champion: str | None  # the champion after this call
    replayed: bool  # True when an earlier decision for this version was found
    shadow: bool = False  # promoted (or refused) as challenger, to run in shadow

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why it was refused (empty when promoted)."""
        return tuple(failed_reasons(self.gates))

    def summary(self) -> str:
        name = f"{self.model_name} version {self.version}"
        if self.promoted and self.shadow:
            return f"{name} promoted to {CHALLENGER}: in shadow beside {self.champion}"
        if self.promoted:
            replaced = f" (replaces {self.champion_before})" if self.champion_before else ""
            now = "" if self.champion == self.version else f"; champion is now {self.champion}"
            return f"{name} promoted to {CHAMPION}{replaced}{now}"
        return f"{name} refused: " + "; ".join(self.reasons)


def promote_step(
    context: StepContext,
    client: MlflowClient,
    *,
    version: ModelVersionInfo,
    run_id: str,
    walk_forward: Mapping[str, float],
) -> PromotionOutcome:
    upgrade_database(context.workspace.database_url)
    engine = create_engine_for(context.workspace.database_url)
    registry = ModelRegistry(context.workspace.tracking_uri)
    name = version.name
    try:
        with session_scope(engine) as session:
            earlier = _earlier_decision(session, version)
        if earlier is not None:
            decision, reasons_before, shadow_of = earlier
            return _replay(
                registry, client, version, run_id, decision, reasons_before, shadow=shadow_of
            )

        window = _validation_window(context)
        # The candidate as registered, not as fitted in memory: this also proves the artifact.
        candidate = registry.load(name, version=version.version)
        comparison = _compare(context, registry, version, window, candidate.predict_proba)
        # in shadow mode a passing version becomes challenger, unless there is no champion
        # to run beside (then it is champion at once)
        into_shadow = context.spec.promotion.shadow and comparison.champion_version is not None
        gates = evaluate_gates(context.spec.gates, walk_forward, comparison)
        gates += _guard_gates(context, registry, version, window, candidate, into_shadow)
        promoted = all(gate.passed for gate in gates)
        decided_at = datetime.now(UTC)
        reasons: dict[str, Any] = {gate.name: gate.to_dict() for gate in gates}
        reasons["beats_champion"][_BEATEN] = comparison.champion_version
        with session_scope(engine) as session:
            session.add(
                ModelPromotion(
                    model_name=name,
                    version=version.version,
                    alias=CHALLENGER if into_shadow else CHAMPION,
                    decision=PromotionDecision.PROMOTED if promoted else PromotionDecision.REFUSED,
                    reasons=reasons,
                    metrics=jsonable(
                        {
                            "walk_forward": dict(walk_forward),
                            "candidate": dict(comparison.candidate),
                            "champion": comparison.champion,
                            "costs": context.costs.to_dict(),
                        }
                    ),
                    run_id=run_id,
                    data_fingerprint=context.data.content_hash,
                    feature_spec_hash=context.spec.features.content_hash,
                    strategy_hash=context.strategy.content_hash,
                    decided_at=decided_at,
                )
            )
    finally:
        engine.dispose()

    _log_comparison(client, run_id, comparison)
    _tag_decision(registry, client, version, run_id, promoted, gates, decided_at.isoformat())
    champion = comparison.champion_version
    if promoted and into_shadow:
        registry.start_shadow(name, version.version, at=decided_at)
    elif promoted:
        registry.set_champion(name, version.version, at=decided_at)
        champion = version.version
    return PromotionOutcome(
        model_name=name,
        version=version.version,
        run_id=run_id,
        promoted=promoted,
        gates=tuple(gates),
        champion_before=comparison.champion_version,
        champion=champion,
        replayed=False,
        shadow=into_shadow,
    )


def _guard_gates(
    context: StepContext,
    registry: ModelRegistry,
    version: ModelVersionInfo,
    window: Window,
    candidate: LoadedModel,
    into_shadow: bool,
) -> list[GateResult]:
    gates = [
        no_lookahead(context, window, candidate.predict_proba),
        champion_not_pinned(registry.model_tags(version.name)),
    ]
    if into_shadow:
        gates.append(no_challenger_in_shadow(registry.alias(version.name, CHALLENGER), version))
    return gates


def _earlier_decision(
    session: Session, version: ModelVersionInfo
) -> tuple[PromotionDecision, dict[str, Any], bool] | None:
    """The gate decision already taken for `version` (the first row: a later one is the
    shadow gate's verdict) and whether it made a challenger not judged since."""
    decisions = session.scalars(
        sa.select(ModelPromotion)
        .where(
            ModelPromotion.model_name == version.name,
            ModelPromotion.version == version.version,
            ModelPromotion.alias.in_((CHAMPION, CHALLENGER)),
        )
        .order_by(ModelPromotion.decided_at, ModelPromotion.id)
    ).all()
    if not decisions:
        return None
    first = decisions[0]
    return first.decision, dict(first.reasons), first.alias == CHALLENGER and len(decisions) == 1


def _validation_window(context: StepContext) -> Window:
    """The candidate's validation window: candles its training never saw."""
    spec, dataset = context.spec, context.dataset
    return Window.of_rows(dataset, validation_split(dataset, spec).test)


def _compare(
    context: StepContext,
    registry: ModelRegistry,
    version: ModelVersionInfo,
    window: Window,
    predict: Predictor,
) -> ChampionComparison:
    spec, dataset = context.spec, context.dataset
    costs = context.costs
    candidate = backtest_window(
        dataset, window, spec, context.strategy, predict, costs=costs, model_version=version.version
    )
    current = registry.champion(version.name)
    if current is None:
        return ChampionComparison(candidate, None, None)
    if current.version == version.version:
        return ChampionComparison(candidate, None, current.version, "it is the champion already")
    try:
        champion_model = registry.load(version.name, version=current.version)
        champion = backtest_window(
            dataset,
            window,
            spec,
            context.strategy,
            champion_model.predict_proba,
            costs=costs,
            feature_spec=champion_model.feature_spec(),
            model_version=current.version,
        )
    except RegistryError as error:
        return ChampionComparison(candidate, None, current.version, str(error))
    return ChampionComparison(candidate, champion, current.version)


def _replay(
    registry: ModelRegistry,
    client: MlflowClient,
    version: ModelVersionInfo,
    run_id: str,
    decision: PromotionDecision,
    reasons: dict[str, Any],
    *,
    shadow: bool = False,
) -> PromotionOutcome:
    """`shadow`: the decision made `version` challenger and no shadow verdict came since."""
    gates = tuple(
        GateResult(
            name=gate_name,
            passed=bool(result.get("passed")),
            value=_number(result.get("value")),
            threshold=_number(result.get("threshold")),
            detail=str(result.get("detail", "")),
        )
        for gate_name, result in reasons.items()
        if isinstance(result, dict)
    )
    beaten = reasons.get("beats_champion", {}).get(_BEATEN)
    promoted = decision is PromotionDecision.PROMOTED
    stamp = version.tags.get("promotion_decided_at") or datetime.now(UTC).isoformat()
    _tag_decision(registry, client, version, run_id, promoted, list(gates), stamp)
    current = registry.champion(version.name)
    champion = current.version if current is not None else None
    if promoted and shadow and current is not None and current.version == beaten:
        if registry.alias(version.name, CHALLENGER) is None:  # the alias move was lost
            registry.start_shadow(version.name, version.version)
    elif promoted and not shadow and (current is None or current.version == beaten):
        try:
            registry.set_champion(version.name, version.version)
            champion = version.version
        except ModelPinnedError:
            pass  # pinned since the decision: the operator's pin wins; the row says promoted
    return PromotionOutcome(
        model_name=version.name,
        version=version.version,
        run_id=run_id,
        promoted=promoted,
        gates=gates,
        champion_before=beaten,
        champion=champion,
        replayed=True,
        shadow=shadow,
    )


def _tag_decision(
    registry: ModelRegistry,
    client: MlflowClient,
    version: ModelVersionInfo,
    run_id: str,
    promoted: bool,
    gates: list[GateResult],
    decided_at: str,
) -> None:
    decision = (PromotionDecision.PROMOTED if promoted else PromotionDecision.REFUSED).value
    reasons = "; ".join(failed_reasons(gates)) or "all gates passed"
    tags = {
        "promotion_decision": decision,
        "promotion_reasons": reasons,
        "promotion_decided_at": decided_at,
    }
    registry.tag_version(version.name, version.version, tags)
    for key, value in tags.items():
        client.set_tag(run_id, f"{TAG_PREFIX}{key.replace('_', '.', 1)}", value)


def _log_comparison(client: MlflowClient, run_id: str, comparison: ChampionComparison) -> None:
    for side, figures in (("candidate", comparison.candidate), ("champion", comparison.champion)):
        for name, value in (figures or {}).items():
            client.log_metric(run_id, metric_key("promotion", side, name), value)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
