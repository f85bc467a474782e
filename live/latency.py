"""The engine's latency histograms: prometheus_client `Histogram`s owned by one engine.

They belong to no registry of their own (prometheus_client's default registry is process-wide,
and a test process runs many engines): the control API's per-engine `CollectorRegistry`
collects them beside the engine's counters (live/api/prometheus.py).

Decision latency: from the input that closed the candle (a trade or a clock tick) reaching
the trading core to the bot's decision taken, so it holds the candle pipeline, the batched
model prediction and the decisions of the bots decided before it in the same step. Labelled by
strategy, not bot: ten thousand bots times the buckets would be a series explosion, while the
strategies are a few files; beyond `MAX_STRATEGY_LABELS` of them the rest share `other`.
"""

from __future__ import annotations

from prometheus_client import Histogram

__all__ = [
    "DECISION_LATENCY_BUCKETS",
    "MAX_STRATEGY_LABELS",
    "OTHER_STRATEGIES",
    "LatencyHistograms",
]

# Seconds: a decision usually takes tens of microseconds to a millisecond; the targets are
# p99 <= 5 ms and max <= 50 ms, so the buckets resolve both and show what lies beyond.
DECISION_LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
MAX_STRATEGY_LABELS = 50
OTHER_STRATEGIES = "other"


class LatencyHistograms:
    """One engine's histograms; `observe_decision` is the core's decision listener."""

    def __init__(self) -> None:
        self.decision = Histogram(
            "tradepipe_decision_latency_seconds",
            "Candle-closing input reaching the core to the bot's decision, per strategy.",
            ["strategy"],
            buckets=DECISION_LATENCY_BUCKETS,
            registry=None,
        )
        # strategy -> its labelled child (looked up once: `labels()` is a locked dict lookup)
        self._decision_by_strategy: dict[str, Histogram] = {}
        self._labelled = 0

    def observe_decision(self, strategy: str, elapsed_ns: int) -> None:
        child = self._decision_by_strategy.get(strategy)
        if child is None:
            child = self._decision_child(strategy)
        child.observe(elapsed_ns / 1e9)

    def _decision_child(self, strategy: str) -> Histogram:
        if self._labelled < MAX_STRATEGY_LABELS:
            self._labelled += 1
            label = strategy
        else:
            label = OTHER_STRATEGIES
        child: Histogram = self.decision.labels(strategy=label)
        self._decision_by_strategy[strategy] = child
        return child

    def collectors(self) -> tuple[Histogram, ...]:
        return (self.decision,)
