"""The live-quality gauges of /metrics: one sample per model version and gauge, labelled by
model and version; a figure that cannot be measured yet is NaN, not 0; none without data."""

from __future__ import annotations

import json
import math

import pandas as pd
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

from live.api.prometheus import quality_families
from tests.api.promtext import parse, value
from tradepipe.quality import build_reference, live_quality
from tradepipe.quality_report import VersionQuality

CONFIG = json.dumps({"confidence_threshold": 0.5})


def version_quality(version: str, labels: list[int], with_reference: bool) -> VersionQuality:
    outcomes = pd.DataFrame(
        {
            "candle_start_ms": range(len(labels)),
            "bot_config": CONFIG,
            "probability": [0.9, 0.2, 0.7, 0.4][: len(labels)],
            "label": labels,
            "feature_names": [("a",)] * len(labels),
            "feature_values": [(float(i),) for i in range(len(labels))],
            "feature_spec_hash": "spec",
        }
    )
    reference = (
        build_reference(
            pd.DataFrame({"a": [0.0, 1, 2, 3]}), [1, 0, 1, 0], [0.8, 0.3, 0.6, 0.1], 0.5
        )
        if with_reference
        else None
    )
    quality = live_quality(outcomes, reference)
    return VersionQuality("m", version, 0, len(labels), quality, ())


class QualityOnly:
    def __init__(self, items: list[VersionQuality]) -> None:
        self.items = items

    def collect(self) -> list[Metric]:
        return list(quality_families(self.items))


def render(items: list[VersionQuality]) -> str:
    registry = CollectorRegistry()
    registry.register(QualityOnly(items))
    return generate_latest(registry).decode()


def test_gauges_per_version_with_nan_for_what_cannot_be_measured() -> None:
    measured = version_quality("2", [1, 0, 0, 1], with_reference=True)
    unmatured = version_quality("3", [-1, -1], with_reference=False)
    samples, types = parse(render([measured, unmatured]))
    assert set(types.values()) == {"gauge"}
    assert value(samples, "tradepipe_model_live_auc", model="m", version="2") == 0.75
    assert value(samples, "tradepipe_model_live_precision", model="m", version="2") == 0.5
    assert value(samples, "tradepipe_model_matured_outcomes", model="m", version="2") == 4
    assert value(samples, "tradepipe_model_validation_auc", model="m", version="2") == 1.0
    assert value(samples, "tradepipe_model_max_feature_psi", model="m", version="2") == 0.0
    assert value(samples, "tradepipe_model_matured_outcomes", model="m", version="3") == 0
    assert value(samples, "tradepipe_model_live_decisions", model="m", version="3") == 2
    for name in ("live_auc", "validation_auc", "prediction_psi", "max_feature_psi"):
        assert math.isnan(value(samples, f"tradepipe_model_{name}", model="m", version="3"))


def test_no_model_gauges_without_a_measured_version() -> None:
    assert list(quality_families([])) == []
