"""Keep a review: a `live_reviews` row, and for a bot that consumes a model an MLflow
evaluation run of each model version reviewed (metrics: matched ratio, decision
agreement; tags: bot, model, model version, the version's training run)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from research.review.report import ReviewReport
from research.review.run import ReviewInputs
from tradepipe.db import create_engine_for, record_live_review, session_scope

__all__ = ["REVIEW_EXPERIMENT", "record_review"]

REVIEW_EXPERIMENT = "live_reviews"


def _at(time_ms: int) -> datetime:
    return datetime.fromtimestamp(time_ms / 1000, UTC)


def record_review(
    report: ReviewReport,
    inputs: ReviewInputs,
    *,
    artifact_root: Path | None = None,
    replace: bool = False,
) -> tuple[int, list[str]]:
    """Store `report`; returns the live_reviews row id and the MLflow run ids. `replace`
    overwrites the review of the same bot and range (see `record_live_review`)."""
    summary = report.to_dict()
    database = create_engine_for(inputs.database_url)
    try:
        with session_scope(database) as session:
            row_id = record_live_review(
                session,
                report.bot,
                _at(report.since_ms),
                _at(report.until_ms),
                summary,
                replace=replace,
            )
    finally:
        database.dispose()
    runs = []
    if report.model is not None:
        for version in report.model_versions:
            runs.append(_log_evaluation(report, inputs, version, artifact_root, row_id))
    return row_id, runs


def _log_evaluation(
    report: ReviewReport,
    inputs: ReviewInputs,
    version: str,
    artifact_root: Path | None,
    row_id: int,
) -> str:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from research.training.tracking import TAG_PREFIX, ensure_experiment, log_json
    from tradepipe.registry import ModelRegistry

    assert report.model is not None
    registry = ModelRegistry(inputs.mlflow_tracking_uri)
    client = MlflowClient(tracking_uri=inputs.mlflow_tracking_uri)
    root = artifact_root or inputs.mlflow_artifact_root
    if root is None:
        root = Path(inputs.decision_log_dir).parent / "mlflow" / "artifacts"
    experiment = ensure_experiment(client, REVIEW_EXPERIMENT, root)
    found = registry.version(report.model, version)
    tags = {
        f"{TAG_PREFIX}kind": "live_review",
        f"{TAG_PREFIX}bot": report.bot,
        f"{TAG_PREFIX}model": report.model,
        f"{TAG_PREFIX}model_version": version,
        f"{TAG_PREFIX}model_run_id": found.run_id or "",
        f"{TAG_PREFIX}live_review_id": str(row_id),
        "mlflow.runName": f"review {report.bot} v{version}",
    }
    # a review kept again under the same row (a re-run day) replaces its evaluation run
    earlier = client.search_runs(
        [experiment],
        filter_string=(
            f"tags.`{TAG_PREFIX}live_review_id` = '{row_id}' and "
            f"tags.`{TAG_PREFIX}model_version` = '{version}'"
        ),
    )
    for old in earlier:
        client.delete_run(old.info.run_id)
    run = client.create_run(experiment, tags=tags)
    run_id = str(run.info.run_id)
    stamp = int(time.time() * 1000)
    figures = {
        "matched_ratio": report.matched_ratio,
        "decision_agreement": report.decision_agreement,
        "features_equal": float(report.features_equal),
        "decisions_equal": float(report.decisions_equal),
        "positions_live": float(report.positions_live),
        "positions_backtest": float(report.positions_backtest),
        "divergences": float(len(report.divergences)),
    }
    client.log_batch(run_id, metrics=[Metric(k, v, stamp, 0) for k, v in figures.items()])
    log_json(client, run_id, report.to_dict(), "review.json")
    client.set_terminated(run_id)
    return run_id
