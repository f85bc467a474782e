"""Validate step: rolling-origin walk-forward folds, each a fresh fit tested out of sample.

Each fold refits the spec's procedure (same `fit_model`, same early stopping) on the purged
rows before its test block and is scored on that block: classification metrics and a
backtest of the consuming strategy. The results go to the training run of the version
being validated, per fold (`wf/fold_<i>/<metric>`) and aggregated (`wf/<metric>_<how>`),
plus a `walk_forward.json` table; the run's `tradepipe.walk_forward` tag marks it done, so
a re-run reads the recorded folds instead of logging a second copy.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric

from research.training.context import StepContext
from research.training.dataset import Dataset
from research.training.evaluate import Window, backtest_window, window_probabilities
from research.training.model import classification_metrics, fit_model
from research.training.spec import ModelSpec
from research.training.splits import walk_forward_splits
from research.training.tracking import TAG_PREFIX, log_json, metric_key
from tradepipe.costs import TradingCosts
from tradepipe.strategy import LoadedStrategy

__all__ = [
    "WALK_FORWARD_TAG",
    "FoldResult",
    "ValidationResult",
    "aggregate_folds",
    "log_walk_forward",
    "recorded_walk_forward",
    "run_walk_forward",
    "validate_step",
]

WALK_FORWARD_TAG = f"{TAG_PREFIX}walk_forward"
WALK_FORWARD_ARTIFACT = "walk_forward.json"


@dataclass(frozen=True)
class FoldResult:
    fold: int
    train_rows: int
    test_rows: int
    test_start_ms: int
    test_end_ms: int
    best_iteration: int
    metrics: Mapping[str, float]  # classification names, and backtest ones prefixed "bt/"


@dataclass(frozen=True)
class ValidationResult:
    model_name: str
    version: str
    run_id: str
    folds: tuple[FoldResult, ...]
    aggregate: Mapping[str, float]
    reused: bool

    def summary(self) -> str:
        get = self.aggregate.get
        return (
            f"{self.model_name} version {self.version}: {len(self.folds)} walk-forward folds, "
            f"AUC {get('wf/auc_mean', math.nan):.3f} mean, Sharpe "
            f"{get('wf/sharpe_median', math.nan):.2f} median, "
            f"{get('wf/trades_total', math.nan):.0f} trades, worst drawdown "
            f"{get('wf/max_drawdown_worst', math.nan):.1%}"
        )


def run_walk_forward(
    dataset: Dataset, spec: ModelSpec, strategy: LoadedStrategy, costs: TradingCosts
) -> list[FoldResult]:
    splits = walk_forward_splits(
        dataset.start_ms,
        dataset.label_end_ms,
        spec.walk_forward.folds,
        purge_ms=round(spec.walk_forward.purge_seconds * 1000),
        embargo_ms=round(spec.walk_forward.embargo_seconds * 1000),
    )
    threshold = spec.strategy.bot.confidence_threshold
    results = []
    for fold, split in enumerate(splits, start=1):
        fitted = fit_model(dataset, split.train, spec)
        window = Window.of_rows(dataset, split.test)
        probabilities, test_probabilities = window_probabilities(
            dataset, window, split.test, fitted.predict_proba
        )
        scores = classification_metrics(dataset.targets(split.test), test_probabilities, threshold)
        backtest = backtest_window(dataset, window, spec, strategy, probabilities, costs=costs)
        results.append(
            FoldResult(
                fold=fold,
                train_rows=len(split.train),
                test_rows=len(split.test),
                test_start_ms=window.start_ms(dataset),
                test_end_ms=window.end_ms(dataset),
                best_iteration=fitted.best_iteration,
                metrics=scores | {f"bt/{name}": value for name, value in backtest.items()},
            )
        )
    return results


def aggregate_folds(folds: Sequence[FoldResult]) -> dict[str, float]:
    """The figures the gates read (see GatesSection) and a few for humans."""

    def values(name: str) -> list[float]:
        return [fold.metrics.get(name, math.nan) for fold in folds]

    def mean(name: str) -> float:
        finite = [value for value in values(name) if math.isfinite(value)]
        return statistics.fmean(finite) if finite else math.nan

    def median(name: str) -> float:
        # NaN (a fold without trades) sorts as the worst: it must not vanish from the median.
        present = [-math.inf if math.isnan(value) else value for value in values(name)]
        middle = statistics.median(present) if present else math.nan
        return math.nan if middle == -math.inf else middle

    trades = values("bt/trades")
    drawdowns = [value for value in values("bt/max_drawdown") if not math.isnan(value)]
    return {
        "wf/folds": float(len(folds)),
        "wf/auc_mean": mean("auc"),
        "wf/log_loss_mean": mean("log_loss"),
        "wf/precision_at_threshold_mean": mean("precision_at_threshold"),
        "wf/trades_total": float(sum(value for value in trades if not math.isnan(value))),
        "wf/sharpe_median": median("bt/sharpe"),
        "wf/sortino_median": median("bt/sortino"),
        "wf/profit_factor_median": median("bt/profit_factor"),
        "wf/total_return_mean": mean("bt/total_return"),
        "wf/max_drawdown_worst": max(drawdowns) if drawdowns else 0.0,
    }


def log_walk_forward(
    client: MlflowClient, run_id: str, folds: Sequence[FoldResult], aggregate: Mapping[str, float]
) -> None:
    stamp = int(time.time() * 1000)
    metrics = [Metric(key, value, stamp, 0) for key, value in aggregate.items()]
    for fold in folds:
        extra = {"train_rows": fold.train_rows, "test_rows": fold.test_rows}
        extra["best_iteration"] = fold.best_iteration
        for name, value in {**fold.metrics, **extra}.items():
            key = metric_key("wf", f"fold_{fold.fold}", name)
            metrics.append(Metric(key, float(value), stamp, 0))
    for start in range(0, len(metrics), 500):  # log_batch takes at most 1000 metrics
        client.log_batch(run_id, metrics=metrics[start : start + 500])
    log_json(
        client,
        run_id,
        {"folds": [asdict(fold) for fold in folds], "aggregate": dict(aggregate)},
        WALK_FORWARD_ARTIFACT,
    )
    client.set_tag(run_id, WALK_FORWARD_TAG, "done")


def recorded_walk_forward(
    client: MlflowClient, run_id: str
) -> tuple[list[FoldResult], dict[str, float]] | None:
    """The folds a run already recorded, or None when it was not validated yet."""
    run = client.get_run(run_id)
    if run.data.tags.get(WALK_FORWARD_TAG) != "done":
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = client.download_artifacts(run_id, WALK_FORWARD_ARTIFACT, folder)
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    folds = [FoldResult(**fold) for fold in payload["folds"]]
    return folds, {key: float(value) for key, value in payload["aggregate"].items()}


def validate_step(
    context: StepContext, client: MlflowClient, *, model_name: str, version: str, run_id: str
) -> ValidationResult:
    """Walk forward and log to `run_id`, or read what an earlier validation recorded."""
    recorded = recorded_walk_forward(client, run_id)
    if recorded is not None:
        folds, aggregate = recorded
        return ValidationResult(model_name, version, run_id, tuple(folds), aggregate, reused=True)
    folds = run_walk_forward(context.dataset, context.spec, context.strategy, context.costs)
    aggregate = aggregate_folds(folds)
    log_walk_forward(client, run_id, folds, aggregate)
    return ValidationResult(model_name, version, run_id, tuple(folds), aggregate, reused=False)
