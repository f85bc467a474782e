"""Task bodies of the `market_data` DAG: incremental candle ingest, one series at a time.

Each run ingests, for every configured series and timeframe, the candles that closed inside
its data interval: candle starts in [floor(start), floor(end)) on the timeframe's grid. An
hourly run therefore stores sixty 1m candles, and a 1d candle only on the run whose hour
ends at midnight UTC. The store's ingest is an idempotent upsert, so a retry, a cleared run
or two overlapping runs store each candle once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from research.marketdata import IngestRequest, ingest
from research.orchestration.common import DataInterval
from research.orchestration.config import OrchestrationConfig, load_orchestration_config
from tradepipe.config import load_settings
from tradepipe.marketdata import MarketDataStore
from tradepipe.timeframes import parse_timeframe

__all__ = ["ingest_series", "planned_series"]

_DEFAULT_EXCHANGE = {"synthetic": "synthetic", "ccxt": "binance"}


def planned_series(config: OrchestrationConfig | None = None) -> list[dict[str, Any]]:
    """One entry per (series, timeframe) of the config: the mapped ingest tasks' inputs."""
    current = config or load_orchestration_config()
    return [
        {
            "source": series.source,
            "exchange": series.exchange or _DEFAULT_EXCHANGE[series.source],
            "symbol": series.symbol,
            "timeframe": timeframe,
            "seed": series.seed,
        }
        for series in current.market_data.series
        for timeframe in series.timeframes
    ]


def ingest_series(
    series: Mapping[str, Any], interval: DataInterval, market_data_dir: Path | None = None
) -> dict[str, Any]:
    """Ingest one series' candles that closed in `interval` into the store at
    `market_data_dir` (default: Settings'); returns the store key and what changed.
    IngestError (a ValueError) for anything a user can fix."""
    # Settings, not research.training's Workspace: that package imports mlflow and
    # lightgbm, seconds an hourly ingest need not pay.
    store = MarketDataStore(market_data_dir or load_settings().resolved_market_data_dir)
    timeframe = parse_timeframe(str(series["timeframe"]))
    start_ms = timeframe.floor_ms(interval.start_ms)
    end_ms = timeframe.floor_ms(interval.end_ms)
    summary: dict[str, Any] = {
        "key": f"{series['exchange']}/{series['symbol']}/{timeframe.name}",
        "start_ms": start_ms,
        "end_ms": end_ms,
        "rows_fetched": 0,
        "rows_added": 0,
        "rows_changed": 0,
    }
    if start_ms >= end_ms:
        return summary | {"note": f"no {timeframe.name} candle closes in this interval"}
    result = ingest(
        store,
        IngestRequest(
            source=str(series["source"]),
            exchange=str(series["exchange"]),
            symbol=str(series["symbol"]),
            timeframe=timeframe.name,
            start_ms=start_ms,
            end_ms=end_ms,
            seed=int(series.get("seed", 7)),
        ),
    )
    return summary | {
        "key": f"{result.exchange}/{result.symbol}/{result.timeframe}",
        "rows_fetched": result.rows_fetched,
        "rows_added": result.rows_added,
        "rows_changed": result.rows_changed,
        "rows_total": result.rows_total,
    }
