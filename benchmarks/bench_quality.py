"""Live model quality of a day of one 1 s bot, from the evidence on disk.

What the engine's background thread does every `engine_quality_seconds`: read a day of
decisions (86,400 rows, 26 features each) and of recorded 1 s candles, label the decisions,
compute the figures and PSI per feature. Reference: reading the same decision log alone
(`read_decisions`), the I/O no computation over it can avoid.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.harness import Measurement, best_of, report
from tradepipe.marketdata import MarketDataStore
from tradepipe.marketdata.decisions import DecisionRecord, append_decisions, read_decisions
from tradepipe.quality import build_reference
from tradepipe.quality_report import quality_from_evidence

DAY_OF_SECONDS = 86_400
FEATURES = 26
START_MS = 1_704_067_200_000
CONFIG = json.dumps(
    {
        "capital_per_trade": 100.0,
        "take_profit_pct": 0.05,
        "stop_loss_pct": 0.05,
        "max_holding_seconds": 60.0,
        "maker_order_timeout_seconds": 10.0,
        "confidence_threshold": 0.5,
    }
)


def _evidence(root: Path) -> list[str]:
    rng = np.random.default_rng(11)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 1e-4, DAY_OF_SECONDS)))
    opens = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 5e-5, DAY_OF_SECONDS)) * close
    starts = START_MS + 1_000 * np.arange(DAY_OF_SECONDS, dtype=np.int64)
    candles = pd.DataFrame(
        {
            "start_ms": starts,
            "open": opens,
            "high": np.maximum(opens, close) + spread,
            "low": np.minimum(opens, close) - spread,
            "close": close,
            "volume": 1.0,
            "taker_buy_volume": 0.5,
            "trade_count": 1.0,
        }
    )
    MarketDataStore(root / "market_data").write_candles("binance-live", "BTCUSDT", "1s", candles)
    names = tuple(f"f{index}" for index in range(FEATURES))
    values = rng.normal(size=(DAY_OF_SECONDS, FEATURES))
    probabilities = rng.random(DAY_OF_SECONDS)
    fixed = ("BTCUSDT", "1s", "bot", "s", "0" * 64, CONFIG, "model", "1")
    records = [
        DecisionRecord(int(start) + 1_000, int(start), *fixed, float(probabilities[i]),
                       "hold", None, None, None, "f" * 64, names, tuple(values[i].tolist()))
        for i, start in enumerate(starts.tolist())
    ]  # fmt: skip
    append_decisions(root / "decisions", records)
    return list(names)


def run() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        names = _evidence(root)
        rng = np.random.default_rng(2)
        training = pd.DataFrame(rng.normal(size=(50_000, FEATURES)), columns=names)
        reference = build_reference(training, rng.random(50_000) > 0.5, rng.random(50_000), 0.5)

        def quality() -> object:
            return quality_from_evidence(
                root / "decisions", root / "market_data", "binance-live", lambda n, v: reference
            )

        measured = Measurement("quality of a day (1 bot, 1 s)", best_of(2, quality),
                               DAY_OF_SECONDS, "decisions")  # fmt: skip
        reading = Measurement(
            "read_decisions of that day",
            best_of(2, lambda: read_decisions(root / "decisions")),
            DAY_OF_SECONDS,
            "decisions",
        )
    report("live model quality vs reading its decision log", measured, reading)
