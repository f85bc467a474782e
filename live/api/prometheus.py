"""The engine's /metrics: prometheus_client, one `CollectorRegistry` per engine.

Never the library's default registry: that one is process-wide, and several engines run in
one test process. The engine already keeps its figures (counters, status, live model quality),
so a custom collector reads fresh snapshots of them at each scrape and yields metric
families; the latency histograms are the engine's own prometheus_client `Histogram`s
(live/latency.py), observed where the engine measures. Exposition: text format 0.0.4.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from live.engine import BotRunState, BotStatusView, Engine, EngineState, EngineStatus
from live.feeds import FeedState
from tradepipe.quality_report import VersionQuality

__all__ = ["CONTENT_TYPE", "EngineCollector", "engine_registry", "quality_families", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "tradepipe"
BOT_LABELS = ("bot", "symbol", "strategy")


def _figure(name: str, help_text: str, value: float) -> Metric:
    """A flat figure: a counter when its name ends in _total (the engine's convention)."""
    if name.endswith("_total"):
        return CounterMetricFamily(name, help_text, value=value)
    return GaugeMetricFamily(name, help_text, value=value)


def _state_gauge(name: str, help_text: str, labels: Sequence[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", help_text, labels=labels)


def _engine_families(status: EngineStatus, metrics: Mapping[str, float]) -> Iterator[Metric]:
    info = _state_gauge("engine_info", "The engine's identity (always 1).", ("engine_id", "broker"))
    info.add_metric((status.engine_id, status.broker), 1)
    yield info
    state = _state_gauge("engine_state", "1 for the engine's current lifecycle state.", ("state",))
    for choice in EngineState:
        state.add_metric((choice.value,), 1 if status.state is choice else 0)
    yield state
    feed = _state_gauge(
        "feed_state", "1 for the market-data feed's current state.", ("exchange", "state")
    )
    for feed_choice in FeedState:
        feed.add_metric(
            (status.feed.exchange, feed_choice.value), 1 if status.feed.state is feed_choice else 0
        )
    yield feed
    yield GaugeMetricFamily(
        f"{PREFIX}_broker_open_orders",
        "Orders open at the broker (last heartbeat).",
        value=status.broker_open_orders,
    )
    for key, value in sorted(metrics.items()):
        yield _figure(f"{PREFIX}_engine_{key}", f"Engine {key.replace('_', ' ')}.", value)


# (family name, counter?, help, figure of a bot's status)
_BOT_FIGURES: tuple[tuple[str, bool, str, Callable[[BotStatusView], float]], ...] = (
    ("bot_enabled", False, "1 when the bots table enables the bot.",
     lambda bot: 1 if bot.enabled else 0),
    ("bot_accepting_entries", False, "1 when the bot may open positions.",
     lambda bot: 1 if bot.accepting_entries else 0),
    ("bot_open_positions", False, "Open positions per bot.", lambda bot: bot.open_positions),
    ("bot_pending_positions", False, "Entries waiting for a fill per bot.",
     lambda bot: bot.pending_positions),
    ("bot_working_orders", False, "Orders working at the broker per bot.",
     lambda bot: bot.working_orders),
    ("bot_entries", True, "Entry orders placed per bot.", lambda bot: bot.entries),
    ("bot_decisions", True, "Strategy decisions per bot.", lambda bot: bot.decisions),
)  # fmt: skip


def _bot_families(status: EngineStatus) -> Iterator[Metric]:
    state = _state_gauge("bot_state", "1 for each bot's current run state.", (*BOT_LABELS, "state"))
    halted = _state_gauge(
        "bot_risk_halted", "1 for the risk limit stopping a bot's entries.", (*BOT_LABELS, "limit")
    )
    figures: list[
        tuple[CounterMetricFamily | GaugeMetricFamily, Callable[[BotStatusView], float]]
    ] = [
        (
            CounterMetricFamily(f"{PREFIX}_{name}", help_text, labels=BOT_LABELS)
            if counter
            else GaugeMetricFamily(f"{PREFIX}_{name}", help_text, labels=BOT_LABELS),
            figure,
        )
        for name, counter, help_text, figure in _BOT_FIGURES
    ]
    for bot in status.bots:
        labels = (bot.name, bot.symbol, bot.strategy)
        for choice in BotRunState:
            state.add_metric((*labels, choice.value), 1 if bot.state is choice else 0)
        for family, figure in figures:
            family.add_metric(labels, figure(bot))
        if bot.risk_halt is not None:
            halted.add_metric((*labels, bot.risk_halt), 1)
    yield state
    for family, _ in figures:
        yield family
    yield halted


def _api_families(metrics: Mapping[str, float]) -> Iterator[Metric]:
    for key, value in sorted(metrics.items()):
        yield _figure(f"{PREFIX}_api_{key}", f"Control API {key.replace('_', ' ')}.", value)


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


def quality_families(qualities: Sequence[VersionQuality]) -> Iterator[GaugeMetricFamily]:
    """The live-quality gauges (`tradepipe_model_*{model,version}`); none without a version."""
    if not qualities:
        return
    for name, help_text, figure in _QUALITY_GAUGES:
        family = GaugeMetricFamily(f"{PREFIX}_{name}", help_text, labels=("model", "version"))
        for item in qualities:
            family.add_metric((item.model, item.version), figure(item))
        yield family


class EngineCollector:
    """A prometheus_client custom collector over one engine's own figures: every scrape
    reads fresh snapshots (status, counters, the API's figures, the last live quality)."""

    def __init__(self, engine: Engine, api: Callable[[], Mapping[str, float]]) -> None:
        self._engine = engine
        self._api = api

    def collect(self) -> Iterable[Metric]:
        status = self._engine.status()
        yield from _engine_families(status, self._engine.metrics())
        yield from _api_families(self._api())
        yield from _bot_families(status)
        yield from quality_families(self._engine.quality.latest)


def engine_registry(
    engine: Engine, api: Callable[[], Mapping[str, float]] = dict
) -> CollectorRegistry:
    """`engine`'s registry: its figures (`api`: the control API's own, `tradepipe_api_*`)
    and its latency histograms."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine, api))
    for histogram in engine.latency.collectors():
        registry.register(histogram)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """Text format 0.0.4 (`CONTENT_TYPE`)."""
    return generate_latest(registry)
