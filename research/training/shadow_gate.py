"""Shadow gate: promote a challenger that beat the champion live, or refuse it and say why.

A spec in shadow mode (`[promotion] mode = "shadow"`) makes a passing version `challenger`;
the live engine runs it in shadow beside the champion for every bot consuming the model
(live/engine/shadow.py, results in `shadow_runs` / `shadow_positions`). This gate, run by
the lifecycle DAG's promote task before it gates a new candidate, compares once the
challenger has run `min_days` (since its first shadow decision) and taken `min_decisions`:

- the figure: **net return per trade after costs**, the mean over closed trades of
  (PnL - fees) / entry notional, fees and slippage those of the paper venue;
- the challenger's: its closed shadow positions; the champion's: the closed live positions
  of the same bots traded by the champion version, entered in the same window
  [first shadow decision, now];
- gates: `shadow_min_trades` (the challenger closed at least `min_trades`),
  `shadow_beats_champion` (its figure minus the champion's >= `min_improvement`; a champion
  without a trade in the window counts 0) and `champion_not_pinned`.

Promoted: `champion` := the challenger (the challenger alias goes with it). Refused: the
challenger alias is removed, so the engine stops shadowing it. Either way the decision is a
`model_promotions` row (alias `champion`, both figures in `metrics`, every gate in
`reasons`), tags on the version and metrics on its training run. Before the thresholds are
met nothing is recorded (the outcome says what it waits for).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient

from research.training.gates import GateResult, failed_reasons, jsonable
from research.training.guard_gates import champion_not_pinned
from research.training.spec import ModelSpec, PromotionSection
from research.training.tracking import TAG_PREFIX, metric_key
from research.training.workspace import Workspace
from tradepipe.db import (
    ModelPromotion,
    PromotionDecision,
    TradeSummary,
    create_engine_for,
    session_scope,
    upgrade_database,
)
from tradepipe.db.shadow import live_summary, shadow_summary
from tradepipe.registry import (
    CHALLENGER,
    CHAMPION,
    SHADOW_STARTED_TAG,
    ModelPinnedError,
    ModelRegistry,
    ModelVersionInfo,
)

__all__ = ["FIGURE", "ShadowVerdict", "judge_challenger"]

FIGURE = "net_return_per_trade"


@dataclass(frozen=True)
class ShadowVerdict:
    model_name: str
    status: str  # no_challenger, waiting, promoted, refused
    detail: str
    challenger: str | None = None
    champion: str | None = None
    gates: tuple[GateResult, ...] = ()
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = jsonable(
            {
                "model_name": self.model_name,
                "status": self.status,
                "detail": self.detail,
                "challenger": self.challenger,
                "champion": self.champion,
                "reasons": failed_reasons(self.gates),
                "figures": self.figures,
            }
        )
        return found


def judge_challenger(
    spec: ModelSpec, workspace: Workspace, *, now: datetime | None = None
) -> ShadowVerdict:
    """Judge the spec's challenger in shadow (see the module docstring)."""
    name, settings = spec.registered_model, spec.promotion
    registry = ModelRegistry(workspace.tracking_uri)
    challenger = registry.alias(name, CHALLENGER)
    if challenger is None or SHADOW_STARTED_TAG not in challenger.tags:
        return ShadowVerdict(name, "no_challenger", "no challenger in shadow")
    champion = registry.champion(name)
    if champion is None or champion.version == challenger.version:
        return ShadowVerdict(name, "no_challenger", "no champion to compare with")
    moment = now or datetime.now(UTC)
    upgrade_database(workspace.database_url)
    engine = create_engine_for(workspace.database_url)
    try:
        with session_scope(engine) as session:
            shadow = shadow_summary(session, name, challenger.version, until=moment)
            waiting = _waiting(settings, shadow, moment)
            if waiting is not None:
                return ShadowVerdict(name, "waiting", waiting, challenger.version, champion.version)
            assert shadow.started_at is not None
            live = live_summary(session, shadow.bots, champion.version, shadow.started_at, moment)
        gates = _gates(settings, shadow, live, champion.version)
        gates.append(champion_not_pinned(registry.model_tags(name)))
        promoted = all(gate.passed for gate in gates)
        figures = _figures(shadow, live, moment, settings)
        with session_scope(engine) as session:
            session.add(
                ModelPromotion(
                    model_name=name,
                    version=challenger.version,
                    alias=CHAMPION,
                    decision=PromotionDecision.PROMOTED if promoted else PromotionDecision.REFUSED,
                    reasons={gate.name: gate.to_dict() for gate in gates},
                    metrics=jsonable(figures),
                    run_id=challenger.run_id,
                    decided_at=moment,
                )
            )
    finally:
        engine.dispose()
    _record(registry, workspace, challenger, promoted, gates, shadow, live, moment)
    status = "promoted" if promoted else "refused"
    if promoted:
        try:
            registry.set_champion(name, challenger.version, at=moment)
        except ModelPinnedError:  # pinned since the gate ran: the pin wins
            status = "refused"
    else:
        registry.remove_challenger(name)
    detail = "; ".join(failed_reasons(gates)) or "beats the champion live"
    return ShadowVerdict(
        name, status, detail, challenger.version, champion.version, tuple(gates), figures
    )


def _waiting(settings: PromotionSection, shadow: TradeSummary, now: datetime) -> str | None:
    if shadow.started_at is None:
        return "no shadow decision yet (is an engine running a bot on this model?)"
    days = (now - shadow.started_at).total_seconds() / 86_400
    if days < settings.min_days or shadow.decisions < settings.min_decisions:
        return (
            f"in shadow for {days:.2f} of {settings.min_days:g} days, "
            f"{shadow.decisions} of {settings.min_decisions} decisions"
        )
    return None


def _gates(
    settings: PromotionSection, shadow: TradeSummary, live: TradeSummary, champion: str
) -> list[GateResult]:
    trades = GateResult(
        "shadow_min_trades",
        shadow.trades >= settings.min_trades,
        float(shadow.trades),
        float(settings.min_trades),
        f"{shadow.trades} closed shadow trades (needs >= {settings.min_trades})",
    )
    mine = shadow.net_return_per_trade
    theirs = live.net_return_per_trade if live.net_return_per_trade is not None else 0.0
    margin = settings.min_improvement
    versus = (
        f"{FIGURE} {_pct(mine)} in shadow vs champion version {champion}'s {_pct(theirs)} live "
        f"({live.trades} trades) on the same bots and window (needs +{_pct(margin)})"
    )
    gain = None if mine is None else mine - theirs
    passed = gain is not None and math.isfinite(gain) and gain >= margin
    return [trades, GateResult("shadow_beats_champion", passed, gain, margin, versus)]


def _pct(value: float | None) -> str:
    return "none" if value is None else f"{value:.4%}"


def _figures(
    shadow: TradeSummary, live: TradeSummary, now: datetime, settings: PromotionSection
) -> dict[str, Any]:
    return {
        "figure": FIGURE,
        "challenger_shadow": shadow.to_dict(),
        "champion_live": live.to_dict(),
        "window": {
            "start": shadow.started_at.isoformat() if shadow.started_at else None,
            "end": now.isoformat(),
        },
        "settings": settings.model_dump(mode="json"),
    }


def _record(
    registry: ModelRegistry,
    workspace: Workspace,
    challenger: ModelVersionInfo,
    promoted: bool,
    gates: list[GateResult],
    shadow: TradeSummary,
    live: TradeSummary,
    now: datetime,
) -> None:
    decision = (PromotionDecision.PROMOTED if promoted else PromotionDecision.REFUSED).value
    tags = {
        "shadow_decision": decision,
        "shadow_reasons": "; ".join(failed_reasons(gates)) or "all shadow gates passed",
        "shadow_decided_at": now.isoformat(),
        "shadow_figures": (
            f"{FIGURE}: challenger {_pct(shadow.net_return_per_trade)} over {shadow.trades} "
            f"trades, champion {_pct(live.net_return_per_trade)} over {live.trades}"
        ),
    }
    registry.tag_version(challenger.name, challenger.version, tags)
    if challenger.run_id is None:
        return
    client = MlflowClient(workspace.tracking_uri, workspace.tracking_uri)
    for key, value in tags.items():
        client.set_tag(challenger.run_id, f"{TAG_PREFIX}{key.replace('_', '.', 1)}", value)
    for side, summary in (("challenger", shadow), ("champion", live)):
        client.log_metric(challenger.run_id, metric_key("shadow", side, "trades"), summary.trades)
        if summary.net_return_per_trade is not None:
            key = metric_key("shadow", side, FIGURE)
            client.log_metric(challenger.run_id, key, summary.net_return_per_trade)
