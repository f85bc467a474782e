"""The engine's status and counters in Prometheus text exposition format 0.0.4.

Hand-written rather than prometheus_client: the engine already keeps its counters, and a
registry of global collectors would be process-wide state, which would break several
engines in one process (the tests run many). Every scrape renders fresh snapshots.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from live.engine import BotRunState, EngineState, EngineStatus
from live.feeds import FeedState
from tradepipe.quality_report import VersionQuality

__all__ = ["CONTENT_TYPE", "escape_label", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "tradepipe"

Labels = Mapping[str, str]


def escape_label(value: str) -> str:
    """A label value as the format requires: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _sample(name: str, labels: Labels, value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    text = ",".join(f'{key}="{escape_label(str(val))}"' for key, val in labels.items())
    return f"{name}{{{text}}} {_number(value)}"


class _Family:
    """One metric family: HELP, TYPE, then its samples (the format wants them together)."""

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = f"{PREFIX}_{name}"
        self.lines = [f"# HELP {self.name} {help_text}", f"# TYPE {self.name} {kind}"]

    def add(self, value: float, **labels: str) -> None:
        self.lines.append(_sample(self.name, labels, value))


def _engine_families(status: EngineStatus, metrics: Mapping[str, float]) -> Iterable[_Family]:
    info = _Family("engine_info", "gauge", "The engine's identity (always 1).")
    info.add(1, engine_id=status.engine_id, broker=status.broker)
    yield info
    state = _Family("engine_state", "gauge", "1 for the engine's current lifecycle state.")
    for choice in EngineState:
        state.add(1 if status.state is choice else 0, state=choice.value)
    yield state
    feed = _Family("feed_state", "gauge", "1 for the market-data feed's current state.")
    for feed_choice in FeedState:
        feed.add(
            1 if status.feed.state is feed_choice else 0,
            exchange=status.feed.exchange,
            state=feed_choice.value,
        )
    yield feed
    orders = _Family("broker_open_orders", "gauge", "Orders open at the broker (last heartbeat).")
    orders.add(status.broker_open_orders)
    yield orders
    for key, value in sorted(metrics.items()):
        kind = "counter" if key.endswith("_total") else "gauge"
        family = _Family(f"engine_{key}", kind, f"Engine {key.replace('_', ' ')}.")
        family.add(value)
        yield family


def _bot_families(status: EngineStatus) -> Iterable[_Family]:
    state = _Family("bot_state", "gauge", "1 for each bot's current run state.")
    enabled = _Family("bot_enabled", "gauge", "1 when the bots table enables the bot.")
    accepting = _Family("bot_accepting_entries", "gauge", "1 when the bot may open positions.")
    open_positions = _Family("bot_open_positions", "gauge", "Open positions per bot.")
    pending = _Family("bot_pending_positions", "gauge", "Entries waiting for a fill per bot.")
    working = _Family("bot_working_orders", "gauge", "Orders working at the broker per bot.")
    entries = _Family("bot_entries_total", "counter", "Entry orders placed per bot.")
    decisions = _Family("bot_decisions_total", "counter", "Strategy decisions per bot.")
    halted = _Family("bot_risk_halted", "gauge", "1 for the risk limit stopping a bot's entries.")
    for bot in status.bots:
        labels = {"bot": bot.name, "symbol": bot.symbol, "strategy": bot.strategy}
        for choice in BotRunState:
            state.add(1 if bot.state is choice else 0, **labels, state=choice.value)
        enabled.add(1 if bot.enabled else 0, **labels)
        accepting.add(1 if bot.accepting_entries else 0, **labels)
        open_positions.add(bot.open_positions, **labels)
        pending.add(bot.pending_positions, **labels)
        working.add(bot.working_orders, **labels)
        entries.add(bot.entries, **labels)
        decisions.add(bot.decisions, **labels)
        if bot.risk_halt is not None:
            halted.add(1, **labels, limit=bot.risk_halt)
    return (
        state,
        enabled,
        accepting,
        open_positions,
        pending,
        working,
        entries,
        decisions,
        halted,
    )


def _api_families(metrics: Mapping[str, float]) -> Iterable[_Family]:
    for key, value in sorted(metrics.items()):
        kind = "counter" if key.endswith("_total") else "gauge"
        family = _Family(f"api_{key}", kind, f"Control API {key.replace('_', ' ')}.")
        family.add(value)
        yield family


# (gauge name, help, figure): live figures of matured outcomes, their validation
# counterparts from the version's quality reference, and drift.
_QUALITY_GAUGES: tuple[tuple[str, str, Callable[[VersionQuality], float]], ...] = (
    ("model_live_auc", "Live AUC of matured outcomes per model version.",
     lambda q: q.quality.figures["auc"]),
    ("model_live_precision", "Live take-profit rate above the bots' threshold per version.",
     lambda q: q.quality.figures["precision_at_threshold"]),
    ("model_live_hit_rate", "Live share of right calls at the bots' threshold per version.",
     lambda q: q.quality.figures["hit_rate"]),
    ("model_live_calibration_error", "Live mean calibration gap per model version.",
     lambda q: q.quality.figures["calibration_error"]),
    ("model_matured_outcomes", "Live decisions whose triple-barrier outcome is known.",
     lambda q: float(q.quality.matured)),
    ("model_live_decisions", "Live decisions with a probability per model version.",
     lambda q: float(q.quality.decisions)),
    ("model_max_feature_psi", "Largest feature PSI against the training distribution.",
     lambda q: q.quality.max_feature_psi),
    ("model_prediction_psi", "PSI of live probabilities against validation's.",
     lambda q: q.quality.prediction_psi),
    ("model_validation_auc", "Validation AUC recorded at training per model version.",
     lambda q: _validation(q, "auc")),
    ("model_validation_precision", "Validation precision at the threshold per version.",
     lambda q: _validation(q, "precision_at_threshold")),
    ("model_validation_hit_rate", "Validation hit rate at the threshold per version.",
     lambda q: _validation(q, "hit_rate")),
)  # fmt: skip


def _validation(item: VersionQuality, figure: str) -> float:
    reference = item.reference
    return math.nan if reference is None else reference.figures.get(figure, math.nan)


def _quality_families(qualities: Sequence[VersionQuality]) -> Iterable[_Family]:
    if not qualities:
        return
    for name, help_text, figure in _QUALITY_GAUGES:
        family = _Family(name, "gauge", help_text)
        for item in qualities:
            family.add(figure(item), model=item.model, version=item.version)
        yield family


def render_metrics(
    status: EngineStatus,
    metrics: Mapping[str, float],
    api: Mapping[str, float] | None = None,
    quality: Sequence[VersionQuality] = (),
) -> str:
    """`metrics`: the engine's (`tradepipe_engine_*`); `api`: the API's own counters, such
    as the events WebSocket's (`tradepipe_api_*`); `quality`: the engine's last live model
    quality per version (`tradepipe_model_*`, computed in the background, not here)."""
    families = [
        *_engine_families(status, metrics),
        *_api_families(api or {}),
        *_bot_families(status),
        *_quality_families(quality),
    ]
    return "\n".join(line for family in families for line in family.lines) + "\n"
