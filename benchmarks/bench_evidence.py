"""The engine's evidence recorder: what recording costs, and how fast it writes.

1. Decisions recorded per second: `DecisionRecord`s (26 features each, the default spec)
   handed to a real `EvidenceRecorder` (queue + writer thread) and written to the decision
   log until `close` returns; the same for 1 s candles into the candle store. The
   reference is the loop's own cost: handing the items over only, measured in the same run.
2. The engine benchmark (benchmarks/bench_engine.py, one symbol, ten bots on 1 s candles)
   twice in the same run, recording off then on (candles and decisions, flushed every
   second): trade -> decision latency p50 and p99 and feeding throughput, with their ratio.
   Issue 12's target: p99 within 5 ms with recording on.

Nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_engine import TARGET_P99_MS, Run, measure, percentile
from live.engine.evidence import EvidenceRecorder
from tradepipe.candles import candles_to_frame
from tradepipe.domain import Candle
from tradepipe.features import default_spec
from tradepipe.marketdata import MarketDataStore
from tradepipe.marketdata.decisions import DecisionKind, DecisionRecord, read_decisions
from tradepipe.timeframes import ONE_SECOND

START_MS = 1_704_067_200_000
DECISIONS = 200_000
CANDLES = 100_000
LIVE = "binance-live"
ENGINE_REPEATS = 3


def decisions(count: int) -> list[DecisionRecord]:
    spec = default_spec()
    names = tuple(spec.feature_names)
    values = tuple(float(index) / 7 for index in range(len(names)))
    return [
        DecisionRecord(
            decided_ms=START_MS + index * 1_000 + 1_000,
            candle_start_ms=START_MS + index * 1_000,
            symbol="BTCUSDT",
            timeframe="1s",
            bot=f"bot_{index % 10}",
            strategy="lgbm_threshold",
            strategy_hash="ab" * 32,
            bot_config='{"capital_per_trade": 100.0, "take_profit_pct": 0.3}',
            model="btcusdt_1m_triple_barrier",
            model_version="3",
            probability=0.5,
            decision=DecisionKind.HOLD,
            limit_price=None,
            reason=None,
            entry=None,
            feature_spec_hash=spec.content_hash,
            feature_names=names,
            feature_values=values,
        )
        for index in range(count)
    ]


def seconds(count: int) -> list[Candle]:
    return [
        Candle("BTCUSDT", ONE_SECOND, START_MS + i * 1_000, 100.0, 101.0, 99.0, 100.5, 2.0, 1.0, 3)
        for i in range(count)
    ]


def recorder(folder: Path) -> EvidenceRecorder:
    return EvidenceRecorder(
        store_root=folder / "market_data",
        decision_root=folder / "decisions",
        exchange=LIVE,
        retention_days=30,
        queue_size=max(DECISIONS, CANDLES) + 1,
        flush_seconds=1.0,
        on_event=lambda kind, message: print(f"  event {kind}: {message}"),
    )


async def write_all(items: list[Any], kind: str) -> tuple[float, float, EvidenceRecorder]:
    """(seconds to hand `items` over, seconds until all are written, the recorder)."""
    with tempfile.TemporaryDirectory(prefix="bench_evidence_") as folder:
        evidence = recorder(Path(folder))
        evidence.start()
        hand = evidence.decision if kind == "decisions" else evidence.candle
        started = time.perf_counter()
        for item in items:
            hand(item)
        handed = time.perf_counter() - started
        await evidence.close(600.0)
        written = time.perf_counter() - started
        if kind == "decisions":
            assert len(read_decisions(Path(folder) / "decisions")) == len(items)
    return handed, written, evidence


def report_writer(kind: str, count: int, handed: float, written: float, dropped: int) -> None:
    print(
        f"  {count:,} {kind}: written in {written * 1000:,.0f} ms ({count / written:,.0f} {kind}/s"
        f" recorded); handing over {handed * 1000:,.1f} ms: the recorder's cost on the trading"
        f" loop, {handed / count * 1e6:.2f} us per {kind.removesuffix('s')}; dropped {dropped}"
    )
    print(f"  ratio written / handed over: {written / handed:,.1f}x")


def month_file_rewrite() -> None:
    """One flush (30 new 1 s candles) into a series whose month file already holds `days`
    of 1 s candles: the store rewrites the file, so this grows through the month."""
    figures = {}
    for days in (1, 28):
        rows = days * 86_400
        with tempfile.TemporaryDirectory(prefix="bench_evidence_") as folder:
            store = MarketDataStore(Path(folder))
            store.write_candles(LIVE, "BTCUSDT", "1s", candles_to_frame(seconds(rows)))
            later = [
                Candle(
                    "BTCUSDT", ONE_SECOND, START_MS + (rows + i) * 1_000, 1.0, 1.0, 1.0, 1.0, 1.0
                )
                for i in range(30)
            ]
            started = time.perf_counter()
            store.write_candles(LIVE, "BTCUSDT", "1s", candles_to_frame(later))
            figures[days] = time.perf_counter() - started
    print(
        f"  one flush into a month file of 1 s candles: {figures[1] * 1000:,.0f} ms after 1 day,"
        f" {figures[28] * 1000:,.0f} ms after 28 days ({figures[28] / figures[1]:.1f}x); "
        "hence flushes minutes apart (evidence_flush_seconds)"
    )


def engine_figures(run: Run) -> tuple[float, float, float]:
    return (
        percentile(run.decision_ms, 0.5),
        percentile(run.decision_ms, 0.99),
        len(run.decision_ms + run.other_ms) / max(run.feed_seconds, 1e-9),
    )


def best(runs: list[Run]) -> tuple[float, float, float]:
    """Lowest p50, lowest p99, highest throughput over `runs`."""
    figures = [engine_figures(run) for run in runs]
    return (
        min(f[0] for f in figures),
        min(f[1] for f in figures),
        max(f[2] for f in figures),
    )


def recording_on(folder: Path) -> dict[str, Any]:
    return {
        "record_candles": True,
        "record_decisions": True,
        "market_data_dir": folder / "market_data",
        "decision_log_dir": folder / "decisions",
        "evidence_flush_seconds": 1.0,  # more often than the default: writes during the run
    }


def run() -> None:
    print("evidence recorder: decisions and candles written by the writer thread")
    handed, written, evidence = asyncio.run(write_all(decisions(DECISIONS), "decisions"))
    report_writer("decisions", DECISIONS, handed, written, evidence.dropped)
    handed, written, evidence = asyncio.run(write_all(seconds(CANDLES), "candles"))
    report_writer("1 s candles", CANDLES, handed, written, evidence.dropped)
    month_file_rewrite()

    print(
        f"engine benchmark (1 symbol, 10 bots, 1 s candles): recording off and on, alternated, "
        f"best of {ENGINE_REPEATS} each (the least disturbed by the rest of the machine)"
    )
    offs: list[Run] = []
    ons: list[Run] = []
    for _ in range(ENGINE_REPEATS):
        offs.append(measure(symbols=1, per_symbol=10, timeframe="1s", hours=2.0))
        ons.append(
            measure(symbols=1, per_symbol=10, timeframe="1s", hours=2.0, changes=recording_on)
        )
    p50_off, p99_off, rate_off = best(offs)
    p50_on, p99_on, rate_on = best(ons)
    on = ons[-1]
    metrics = on.metrics
    print(
        f"  recording off: trade -> decision p50 {p50_off:.3f} ms, p99 {p99_off:.3f} ms, "
        f"{rate_off:,.0f} trades/s"
    )
    print(
        f"  recording on:  trade -> decision p50 {p50_on:.3f} ms, p99 {p99_on:.3f} ms, "
        f"{rate_on:,.0f} trades/s; {metrics['evidence_candles_total']:,.0f} candles and "
        f"{metrics['evidence_decisions_total']:,.0f} decisions recorded, "
        f"{metrics['evidence_dropped_total']:,.0f} dropped, "
        f"{metrics['evidence_lost_total']:,.0f} lost"
    )
    print(
        f"  ratio on / off: p50 {p50_on / p50_off:.2f}, p99 {p99_on / p99_off:.2f}, "
        f"throughput {rate_on / rate_off:.2f}; p99 on vs target {TARGET_P99_MS:g} ms: "
        f"{p99_on / TARGET_P99_MS:.2f} of it"
    )


if __name__ == "__main__":
    run()
