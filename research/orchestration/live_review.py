"""Task bodies of the `live_review` DAG: every bot reviewed over the run's data interval.

`plan_reviews` lists the bots of the trading database; `review_bot` (mapped, one task per
bot) replays the bot's recorded candles of the interval through the backtester
(`research.review`) and keeps the review: one `live_reviews` row per bot and interval,
replaced when the interval is re-run, and an MLflow evaluation run per model version. A
bot that took no decision in the interval (stopped, or recording off) is skipped with the
reason, not failed. XCom carries the review's headline figures, never the divergences.
"""

from __future__ import annotations

from typing import Any

from research.orchestration.common import DataInterval, json_safe, trading_session
from tradepipe.config import Settings, load_settings
from tradepipe.db import list_bots

__all__ = ["plan_reviews", "review_one_bot"]


def plan_reviews(settings: Settings | None = None) -> list[dict[str, Any]]:
    """One plan per bot of the trading database, by name."""
    current = settings or load_settings()
    with trading_session(current.resolved_database_url) as session:
        return [{"bot": view.name} for view in sorted(list_bots(session), key=lambda b: b.name)]


def review_one_bot(
    plan: dict[str, Any], interval: DataInterval, settings: Settings | None = None
) -> dict[str, Any]:
    """Review `plan["bot"]` over `interval` and keep the review (see the module docstring)."""
    from research.review import ReviewError, review_bot
    from research.review.record import record_review
    from research.review.settings import inputs_from_settings

    current = settings or load_settings()
    bot = str(plan["bot"])
    inputs = inputs_from_settings(
        current, bot, since_ms=interval.start_ms, until_ms=interval.end_ms
    )
    try:
        report = review_bot(inputs)
    except ReviewError as error:
        if "no decisions recorded" not in str(error):
            raise
        return {"bot": bot, "interval": interval.to_dict(), "skipped": str(error)}
    review_id, runs = record_review(report, inputs, replace=True)
    summary = report.to_dict()
    headline = {
        key: summary[key]
        for key in (
            "features_equal",
            "decisions_equal",
            "decision_agreement",
            "positions_live",
            "positions_backtest",
            "positions_matched",
            "matched_ratio",
        )
    }
    result: dict[str, Any] = json_safe(
        {
            "bot": bot,
            "interval": interval.to_dict(),
            "review_id": review_id,
            "mlflow_runs": runs,
            "divergences": len(report.divergences),
            **headline,
        }
    )
    return result
