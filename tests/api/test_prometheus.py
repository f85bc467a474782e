"""The exposition through prometheus_client: label values survive any character, and the
decision-latency histogram keeps its strategy labels bounded and its buckets in seconds."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from live.api.prometheus import quality_families
from live.latency import (
    DECISION_LATENCY_BUCKETS,
    MAX_STRATEGY_LABELS,
    OTHER_STRATEGIES,
    LatencyHistograms,
)
from tradepipe.quality import live_quality
from tradepipe.quality_report import VersionQuality


class Families:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def exposed(*collectors: object) -> dict[str, Metric]:
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


@pytest.mark.parametrize(
    "raw", ["plain", 'quo"te', "back\\slash", "new\nline", 'all \\"\n of them', "ünï"]
)
def test_label_values_round_trip_whatever_they_hold(raw: str) -> None:
    import pandas as pd

    outcomes = pd.DataFrame(
        {"candle_start_ms": [0], "bot_config": "{}", "probability": [0.5], "label": [-1],
         "feature_names": [("a",)], "feature_values": [(0.0,)], "feature_spec_hash": "s"}
    )  # fmt: skip
    quality = VersionQuality(raw, "7", 0, 1, live_quality(outcomes, None), ())
    family = exposed(Families(list(quality_families([quality]))))["tradepipe_model_live_auc"]
    [sample] = family.samples
    assert sample.labels == {"model": raw, "version": "7"}
    assert math.isnan(sample.value)


def test_decision_latency_is_in_seconds_and_its_buckets_cumulative() -> None:
    latency = LatencyHistograms()
    for elapsed_ns in (50_000, 300_000, 300_000, 4_000_000, 70_000_000, 3_000_000_000):
        latency.observe_decision("ema_rsi", elapsed_ns)
    family = exposed(*latency.collectors())["tradepipe_decision_latency_seconds"]
    assert family.type == "histogram"
    buckets = {
        float(sample.labels["le"]): sample.value
        for sample in family.samples
        if sample.name.endswith("_bucket")
    }
    assert list(buckets) == [*DECISION_LATENCY_BUCKETS, math.inf]
    assert buckets[0.0001] == 1 and buckets[0.00025] == 1 and buckets[0.0005] == 3
    assert buckets[0.005] == 4 and buckets[0.05] == 4 and buckets[0.1] == 5
    assert buckets[1.0] == 5 and buckets[math.inf] == 6
    [total] = [s.value for s in family.samples if s.name.endswith("_sum")]
    assert total == pytest.approx(3.07465)


def test_strategies_beyond_the_bound_share_one_label() -> None:
    latency = LatencyHistograms()
    names = [f"strategy_{index:03d}" for index in range(MAX_STRATEGY_LABELS + 20)]
    for name in names + names:  # a strategy seen again keeps the label it got first
        latency.observe_decision(name, 1_000)
    family = exposed(*latency.collectors())["tradepipe_decision_latency_seconds"]
    counts = {s.labels["strategy"]: s.value for s in family.samples if s.name.endswith("_count")}
    assert len(counts) == MAX_STRATEGY_LABELS + 1
    assert set(names[:MAX_STRATEGY_LABELS]) < set(counts)
    assert counts[OTHER_STRATEGIES] == 2 * 20
    assert all(counts[name] == 2 for name in names[:MAX_STRATEGY_LABELS])
