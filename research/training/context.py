"""Everything one pipeline step needs, built once per CLI call or DAG task.

A step is keyed by what determines its result: the spec's content hash, the candles'
content hash, the consuming strategy's content hash and the trading costs its backtests pay
(plus the LightGBM version, which can change the trees). Train, validate and promote all
derive the same `train_key`, which is how validate and promote find the version `train`
registered without being told its number, and why re-running a step on the same inputs
finds its earlier result instead of repeating it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import lightgbm as lgb

from research.marketdata import SourceError
from research.marketdata.load import CandleData, load_candles
from research.training.dataset import Dataset
from research.training.errors import DatasetError
from research.training.evaluate import load_consuming_strategy
from research.training.kept_datasets import kept_dataset
from research.training.spec import ModelSpec, load_spec
from research.training.workspace import Workspace
from tradepipe.costs import TradingCosts
from tradepipe.strategy import LoadedStrategy

__all__ = ["DataInput", "StepContext", "load_context", "load_training_candles"]

DataInput = str | Path | CandleData | None


@dataclass(frozen=True)
class StepContext:
    spec: ModelSpec
    spec_path: Path | None
    spec_text: str
    data: CandleData
    strategy: LoadedStrategy
    workspace: Workspace
    data_argument: str | None = None  # the --data the user gave, if any

    def command(self, step: str) -> str:
        """The CLI command that runs `step` on these inputs, for error messages."""
        data = f" --data {self.data_argument}" if self.data_argument else ""
        return f"tradepipe research {step} --spec {self.spec_path}{data}"

    @cached_property
    def dataset(self) -> Dataset:
        """Built by the first step of a run, loaded by the next ones (`kept_datasets`)."""
        return kept_dataset(self.workspace.dataset_dir, self.data, self.spec)

    @cached_property
    def costs(self) -> TradingCosts:
        """What every backtest of this step pays: the venue's costs, raised by the spec's."""
        return self.spec.trading_costs(self.workspace.venue_costs)

    @cached_property
    def train_key(self) -> str:
        parts = {
            "spec": self.spec.content_hash,
            "costs": self.costs.to_dict(),  # other costs, other backtests: another run
            "data": self.data.content_hash,
            "strategy": self.strategy.content_hash,
            "lightgbm": lgb.__version__,
        }
        canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def load_context(
    spec_path: str | Path, data: DataInput = None, workspace: Workspace | None = None
) -> StepContext:
    """Spec, candles and strategy for a step; every failure is a one-line ResearchError.

    `data` replaces the spec's data reference: a file path or store key (the spec's
    start/end still apply), or CandleData already loaded.
    """
    path = Path(spec_path)
    spec = load_spec(path)
    chosen = workspace or Workspace.from_settings()
    strategy = load_consuming_strategy(spec)
    candles = data if isinstance(data, CandleData) else _load(spec, data, chosen)
    return StepContext(
        spec=spec,
        spec_path=path,
        spec_text=path.read_text(encoding="utf-8"),
        data=candles,
        strategy=strategy,
        workspace=chosen,
        data_argument=str(data) if isinstance(data, str | Path) else None,
    )


def _load(spec: ModelSpec, data: str | Path | None, workspace: Workspace) -> CandleData:
    reference = str(data) if data is not None else spec.data.reference
    # A relative window, run by hand, ends now (on the timeframe's grid: a whole candle).
    now_ms = int(time.time() * 1000)
    until_ms = None if spec.data.lookback_days is None else spec.parsed_timeframe.floor_ms(now_ms)
    start_ms, end_ms = spec.data.window(until_ms)
    return load_training_candles(
        reference, spec.timeframe, spec.symbol, workspace, start_ms=start_ms, end_ms=end_ms
    )


def load_training_candles(
    reference: str,
    timeframe: str,
    symbol: str,
    workspace: Workspace,
    *,
    start_ms: int | None,
    end_ms: int | None,
) -> CandleData:
    """The `symbol` candles a spec trains on, from `reference` (a file or a store key) in
    the window: a DatasetError says what is wrong, how to ingest a series that is not
    there, or that the reference holds another symbol."""
    try:
        loaded = load_candles(
            reference,
            store=workspace.store,
            timeframe=timeframe,
            symbol=symbol,
            start_ms=start_ms,
            end_ms=end_ms,
        )
    except SourceError as error:
        hint = ""
        if "no such stored series" in str(error) or "no candles" in str(error):
            hint = " (ingest it first: the market_data DAG or `tradepipe data ingest`)"
        raise DatasetError(f"{error}{hint}") from None
    if loaded.symbol.upper() != symbol.upper():
        raise DatasetError(f"{reference}: holds {loaded.symbol} candles, the spec trains {symbol}")
    return loaded
