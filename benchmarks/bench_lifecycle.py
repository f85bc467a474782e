"""The model lifecycle on one year of 1-minute candles, stage by stage (target: <= 25 s).

The same four calls the `model_lifecycle` DAG's tasks make (research/orchestration/
lifecycle.py): build_dataset -> train -> walk-forward validate -> promote (backtest of the
candidate and the champion with the consuming strategy, the spec's gates, the alias move
or the recorded refusal). The spec is the demo spec (research/specs/btcusdt_1m.toml) with
its window widened to the year 2023; the data is the synthetic BTCUSDT market ingested
into a market-data store, and MLflow is a real SQLite store, all in a temporary folder
that is deleted afterwards. The MLflow store's creation (its schema migrations) falls in
the train stage, as it does on a fresh machine's first run. The stages share the dataset as
the DAG's tasks do, through the workspace's kept datasets (research/training/
kept_datasets.py): build_dataset builds and keeps it, the later stages load it.

Ingesting the year is setup, printed but not counted. The reference measured in the same
run is one bare `build_dataset` (batch features and triple-barrier labels, no I/O): the
ratio says how many dataset builds the whole lifecycle costs. Every stage runs once (a
second run would be reused by the idempotent steps, which is the point of them).
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import Measurement, best_of, print_target, report
from research.marketdata import IngestRequest, ingest
from research.marketdata.load import load_candles
from research.orchestration.common import DataInterval
from research.orchestration.lifecycle import (
    build_spec_dataset,
    promote_model,
    train_model,
    validate_model,
)
from research.training import Workspace, build_dataset, load_spec
from tradepipe.marketdata import MarketDataStore

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "research" / "specs" / "btcusdt_1m.toml"
START, END = datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)
TARGET_SECONDS = 25.0


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _year_spec(folder: Path) -> Path:
    """The demo spec over the year, its strategy file named absolutely (any working dir)."""
    text = SPEC.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^start = \S+", f"start = {START.date().isoformat()}", text)
    text = re.sub(r"(?m)^end = \S+", f"end = {END.date().isoformat()}", text)
    strategy = (ROOT / "strategies" / "lgbm_threshold.py").as_posix()
    text = re.sub(r'(?m)^file = "[^"]+"', f'file = "{strategy}"', text)
    path = folder / "btcusdt_1m_year.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _timed(stages: list[tuple[str, float, float]], name: str, step: Callable[[], Any]) -> Any:
    """Run a stage; record its wall time and this process's CPU time (which a machine
    shared with other work inflates far less)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    result = step()
    stages.append((name, time.perf_counter() - started, time.process_time() - cpu_started))
    return result


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_lifecycle_") as temp:
        folder = Path(temp)
        workspace = Workspace.under(folder)
        spec_path = str(_year_spec(folder))
        spec = load_spec(spec_path)

        started = time.perf_counter()
        request = IngestRequest(
            "synthetic", None, spec.symbol, spec.timeframe, None, _ms(START), _ms(END)
        )
        ingested = ingest(MarketDataStore(workspace.market_data_dir), request)
        print(
            f"  synthetic market: {ingested.rows_total:,} candles of {START.date()}.."
            f"{END.date()} ingested in {time.perf_counter() - started:.1f} s (setup)"
        )

        # The run of 2024-01-01 (data interval: 2023-12-31) trains on the whole year.
        interval = DataInterval(datetime(2023, 12, 31, tzinfo=UTC), END)
        stages: list[tuple[str, float, float]] = []
        data_ref = _timed(
            stages, "build_dataset", lambda: build_spec_dataset(spec_path, interval, workspace)
        )
        trained = _timed(stages, "train (+ register)", lambda: train_model(data_ref, workspace))
        validated = _timed(
            stages, "walk-forward validate", lambda: validate_model(trained, workspace)
        )
        outcome = _timed(
            stages,
            "promote (backtests, gates, alias)",
            lambda: promote_model(validated, workspace),
        )
        total = sum(seconds for _, seconds, _ in stages)
        cpu_total = sum(cpu for _, _, cpu in stages)

        candles = load_candles(spec.data.reference, store=workspace.store)
        reference = Measurement(
            "build_dataset (features + labels, no I/O)",
            best_of(1, lambda: build_dataset(candles.candles, spec, source="bench")),
            candles.rows,
            "candles",
        )

    print(
        f"  {data_ref['dataset_rows']:,} training rows, version {outcome['version']}, "
        f"{'promoted' if outcome['promoted'] else 'refused'}"
        + ("" if outcome["promoted"] else f": {'; '.join(outcome['reasons'])}")
    )
    for name, seconds, cpu in stages:
        print(f"  {name:<44} {seconds:8.2f} s  {seconds / total:6.1%}  (CPU {cpu:6.2f} s)")
    lifecycle = Measurement("model lifecycle (4 stages)", total, candles.rows, "candles")
    report("model lifecycle on a year of 1-minute candles", lifecycle, reference)
    print_target("model lifecycle", total, TARGET_SECONDS, "s")
    print(f"  CPU time of this process over the 4 stages: {cpu_total:.1f} s")
