"""The engine-at-scale benchmark, run small (its size comes from the environment): it
builds its engine, plays its market and reports every figure it has a target for, and
the latency it reports is the engine's own (one value per decision, as many as the
engine's decision-latency histogram counted). Times are printed, never asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import bench_scale


def test_the_scale_benchmark_runs_small_and_reports_each_target(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "BOTS": "12",
        "SYMBOLS": "3",
        "SECONDS": "40",  # past the 30 candles of warm-up of the 1 s bots
        "SPEED": "20",
    }.items():
        monkeypatch.setenv(f"TRADEPIPE_BENCH_{name}", value)
    scale = bench_scale.Scale.from_environment()
    assert (scale.bots, scale.symbols, scale.timeframes) == (12, 3, ("1s",))
    specs = bench_scale.bot_specs(scale)
    assert {symbol for _, symbol, _, _ in specs} == set(scale.symbol_names())
    assert {strategy for _, _, strategy, _ in specs} == {"always", "ema_rsi"}

    run = bench_scale.measure(scale, None)

    per_symbol = len(bench_scale.market(scale)) // 3
    assert run.trades == 3 * per_symbol
    assert run.decisions > 0 and run.entries > 0
    assert len(run.decision_ns) == run.decisions == run.histogram_count
    assert run.backlog and run.rss_samples
    met = bench_scale.report(scale, run)
    assert set(met) == {"rss", "p99", "max", "writes"}
    printed = capsys.readouterr().out
    for figure in ("resident memory", "decision latency", "database writes"):
        assert figure in printed
