"""What /metrics costs: one scrape of an engine with 100 bots, and one decision-latency
observation on the engine's hot path.

Scrape: `render(engine_registry(engine))` (the custom collector's snapshots, the histograms,
prometheus_client's text format 0.0.4) against the reference measured in the same run, the
engine's own snapshots alone (`status()` and `metrics()`, which any exposition must read).
Observation: `LatencyHistograms.observe_decision` against a listener that does nothing, so
the ratio is what the histogram adds to each decision. Nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.bench_engine import prepare, synthetic_trades
from live.api.prometheus import engine_registry, render
from live.engine import build_engine
from live.feeds import InMemoryFeed
from live.latency import LatencyHistograms

SYMBOLS, PER_SYMBOL = 10, 10
SCRAPES = 50
OBSERVATIONS = 200_000


def median_ms(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def scrape_costs(folder: Path) -> None:
    names = [f"S{index:03d}USDT" for index in range(SYMBOLS)]
    config = prepare(folder, names, PER_SYMBOL, "1s")
    feed = InMemoryFeed("binance")
    engine = build_engine(config, feed=feed)
    await engine.start()
    try:
        for index, trade in enumerate(synthetic_trades(names, 0.05)):
            feed.push(trade)
            if index % 8 == 0:
                await asyncio.sleep(0)
        registry = engine_registry(engine)
        text = render(registry)
        scrape = median_ms(lambda: render(registry), SCRAPES)
        snapshots = median_ms(lambda: (engine.status(), engine.metrics()), SCRAPES)
        decisions = engine.metrics()["decisions_total"]
    finally:
        await engine.stop()
    bots = SYMBOLS * PER_SYMBOL
    print(
        f"  scrape of {bots} bots ({decisions:,.0f} decisions observed): p50 {scrape:.2f} ms, "
        f"{len(text) / 1024:,.0f} kB of text 0.0.4"
    )
    print(
        f"  reference: the engine's snapshots alone, p50 {snapshots:.2f} ms; "
        f"scrape / reference = {scrape / snapshots:.1f}x"
    )


def observation_costs() -> None:
    latency = LatencyHistograms()

    def nothing(strategy: str, elapsed_ns: int) -> None:
        return None

    def per_call_ns(listener: Callable[[str, int], None]) -> float:
        started = time.perf_counter_ns()
        for _ in range(OBSERVATIONS):
            listener("ema_rsi", 420_000)
        return (time.perf_counter_ns() - started) / OBSERVATIONS

    observe, reference = per_call_ns(latency.observe_decision), per_call_ns(nothing)
    print(
        f"  decision-latency observation: {observe:,.0f} ns a decision; reference: a listener "
        f"doing nothing, {reference:,.0f} ns; ratio {observe / reference:.1f}x"
    )


def run() -> None:
    print("metrics: /metrics scrape and the decision-latency histogram")
    with tempfile.TemporaryDirectory(prefix="bench_metrics_") as folder:
        asyncio.run(scrape_costs(Path(folder)))
    observation_costs()
