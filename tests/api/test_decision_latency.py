"""The decision-latency histogram of /metrics over a real engine and API: one observation
per decision the engine made, per strategy, with cumulative buckets, read back through
prometheus_client's parser."""

from __future__ import annotations

import math
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.api.harness import engine_api
from tests.engine.helpers import Aio, push, walk

HISTOGRAM = "tradepipe_decision_latency_seconds"


def test_every_decision_is_observed_once_under_its_strategy(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    async def scenario() -> tuple[str, float]:
        async with engine_api(database_url, strategies_dir) as api:
            await push(api.running, walk(90))
            text = (await api.client.get("/metrics")).text
            return text, api.running.engine.metrics()["decisions_total"]

    text, decisions = aio.run(scenario())
    families = {f.name: f for f in text_string_to_metric_families(text)}
    histogram = families[HISTOGRAM]
    assert histogram.type == "histogram"
    counts = {s.labels["strategy"]: s.value for s in histogram.samples if s.name.endswith("_count")}
    per_bot = {
        (s.labels["strategy"], s.labels["bot"]): s.value
        for s in families["tradepipe_bot_decisions"].samples
    }
    assert decisions > 0
    [engine_total] = families["tradepipe_engine_decisions"].samples
    assert sum(counts.values()) == engine_total.value == decisions
    assert counts == {
        strategy: sum(n for (s, _), n in per_bot.items() if s == strategy)
        for strategy, _ in per_bot
    }
    assert set(counts) == {"always", "always_limit"}  # alpha's and beta's
    for strategy, count in counts.items():
        buckets = [
            (float(s.labels["le"]), s.value)
            for s in histogram.samples
            if s.name == f"{HISTOGRAM}_bucket" and s.labels["strategy"] == strategy
        ]
        bounds = [bound for bound, _ in buckets]
        assert bounds == sorted(bounds) and bounds[-1] == math.inf
        cumulative = [n for _, n in buckets]
        assert cumulative == sorted(cumulative)  # never falls: each bucket holds the ones below
        assert cumulative[-1] == count
        sums = [s for s in histogram.samples if s.name == f"{HISTOGRAM}_sum"]
        [total] = [s.value for s in sums if s.labels["strategy"] == strategy]
        assert 0 < total < count  # seconds, each decision well under one
