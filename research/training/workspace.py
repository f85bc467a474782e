"""Where the research pipeline keeps its state: MLflow store and artifacts, trading
database, market data, and the datasets its steps share (`kept_datasets`). Built from
Settings once, passed explicitly afterwards, so tests and DAG tasks can point one process at
several stores without touching the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tradepipe.config import Settings, load_settings
from tradepipe.costs import PAPER_COSTS, TradingCosts, paper_costs
from tradepipe.marketdata import MarketDataStore

__all__ = ["Workspace"]


@dataclass(frozen=True, slots=True)
class Workspace:
    tracking_uri: str
    artifact_root: Path
    database_url: str
    market_data_dir: Path
    # the costs of the venue the specs' bots trade on (paper): the least a gate charges
    venue_costs: TradingCosts = PAPER_COSTS
    # where a pipeline's steps keep the dataset they share (None: each step builds its own)
    dataset_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Workspace:
        """The embedded defaults: SQLite MLflow store and artifacts under var/mlflow,
        the trading database and market data under var/ (TRADEPIPE_* override)."""
        current = settings or load_settings()
        return cls(
            tracking_uri=current.resolved_mlflow_tracking_uri,
            artifact_root=current.resolved_mlflow_artifact_root,
            database_url=current.resolved_database_url,
            market_data_dir=current.resolved_market_data_dir,
            venue_costs=paper_costs(current),
            dataset_dir=current.state_dir / "datasets",
        )

    @classmethod
    def under(cls, root: Path) -> Workspace:
        """Everything in one folder: tests and throwaway experiments."""
        root = root.resolve()
        return cls(
            tracking_uri=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
            artifact_root=root / "mlflow" / "artifacts",
            database_url=f"sqlite:///{root / 'tradepipe.db'}",
            market_data_dir=root / "market_data",
            dataset_dir=root / "datasets",
        )

    @property
    def store(self) -> MarketDataStore:
        return MarketDataStore(self.market_data_dir)
