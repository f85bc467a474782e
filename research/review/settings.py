"""A review's inputs from the platform settings: the folders and stores the engine recorded
into, and the costs the paper broker charged (the bots' venue), so the backtest trades at
the same fees as the bots did."""

from __future__ import annotations

from research.backtest import DEFAULT_FEES
from research.review.run import ReviewInputs
from tradepipe.config import Settings
from tradepipe.orders import FeeSchedule

__all__ = ["inputs_from_settings"]


def inputs_from_settings(
    settings: Settings, bot: str, *, since_ms: int | None = None, until_ms: int | None = None
) -> ReviewInputs:
    maker = settings.paper_maker_fee_rate
    taker = settings.paper_taker_fee_rate
    fees = FeeSchedule(
        maker_rate=DEFAULT_FEES.maker_rate if maker is None else maker,
        taker_rate=DEFAULT_FEES.taker_rate if taker is None else taker,
    )
    return ReviewInputs(
        bot=bot,
        database_url=settings.resolved_database_url,
        market_data_dir=settings.resolved_market_data_dir,
        decision_log_dir=settings.resolved_decision_log_dir,
        record_exchange=settings.record_exchange,
        mlflow_tracking_uri=settings.resolved_mlflow_tracking_uri,
        fees=fees,
        since_ms=since_ms,
        until_ms=until_ms,
        mlflow_artifact_root=settings.resolved_mlflow_artifact_root,
    )
