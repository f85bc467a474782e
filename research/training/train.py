"""Train step: fit the final model, score it on the validation window, log and register it.

The validation window is the newest `validation_fraction` of the rows, cut off by the
purge and embargo gap and never seen by the fit or its early stopping. On it the run records
classification metrics and a backtest of the consuming strategy driven by the model's
probabilities; the model goes to MLflow as a LightGBM booster (its pyfunc returns the
positive-class probability) with signature and input example, and is registered under the
spec's model name with alias `challenger` (no alias in shadow mode: there `challenger` is
given only by the promotion, to a version that passed the gates).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import lightgbm as lgb
import mlflow
import mlflow.lightgbm
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from research.training.context import StepContext
from research.training.evaluate import (
    Window,
    backtest_window,
    validation_split,
    window_probabilities,
)
from research.training.model import FittedModel, classification_metrics, fit_model
from research.training.tracking import (
    TAG_PREFIX,
    ensure_experiment,
    find_training_run,
    log_json,
    metric_key,
    tracking_to,
)
from tradepipe.guard import GUARD_RAILS_TAG
from tradepipe.quality import QualityReference, build_reference
from tradepipe.registry import (
    CHALLENGER,
    FEATURE_SPEC_HASH_TAG,
    FEATURE_SPEC_TAG,
    QUALITY_REFERENCE_ARTIFACT,
    ModelRegistry,
)

__all__ = ["COSTS_TAG", "TrainResult", "train_step"]

MODEL_NAME_IN_RUN = "model"
TRAIN_KEY_TAG = f"{TAG_PREFIX}train_key"
COSTS_TAG = f"{TAG_PREFIX}costs"  # the trading costs every backtest of the run paid


@dataclass(frozen=True)
class TrainResult:
    model_name: str
    version: str
    run_id: str
    experiment_id: str
    train_key: str
    metrics: Mapping[str, float]
    reused: bool  # True when this exact (spec, data, strategy) was trained before

    def summary(self) -> str:
        verb = "already trained as" if self.reused else "registered"
        auc = self.metrics.get("val/auc", math.nan)
        sharpe = self.metrics.get("val/bt/sharpe", math.nan)
        return (
            f"{verb} {self.model_name} version {self.version} (run {self.run_id}): "
            f"validation AUC {auc:.3f}, backtest Sharpe {sharpe:.2f}"
        )


def train_step(context: StepContext, *, force: bool = False) -> TrainResult:
    """Train, log and register; with `force` False an identical earlier run is reused."""
    spec, workspace = context.spec, context.workspace
    registry = ModelRegistry(workspace.tracking_uri)
    with tracking_to(workspace) as client:
        experiment_id = ensure_experiment(client, spec.experiment_name, workspace.artifact_root)
        earlier = None if force else _earlier_result(context, client, registry, experiment_id)
        if earlier is not None:
            return earlier
        trained = _fit_and_score(context)
        run_id, version = _log_and_register(context, client, registry, experiment_id, trained)
    return TrainResult(
        model_name=spec.registered_model,
        version=version,
        run_id=run_id,
        experiment_id=experiment_id,
        train_key=context.train_key,
        metrics=trained.metrics,
        reused=False,
    )


@dataclass(frozen=True)
class _Trained:
    """The fitted model and what the run logs about it."""

    fitted: FittedModel
    validation_features: pd.DataFrame
    reference: QualityReference
    window: Window
    metrics: dict[str, float]


def _earlier_result(
    context: StepContext, client: MlflowClient, registry: ModelRegistry, experiment_id: str
) -> TrainResult | None:
    """The version an identical earlier run registered, if there is one."""
    spec = context.spec
    earlier = find_training_run(client, experiment_id, context.train_key)
    if earlier is None:
        return None
    versions = registry.versions_of_run(spec.registered_model, earlier.info.run_id)
    if not versions:
        return None
    return TrainResult(
        model_name=spec.registered_model,
        version=versions[-1].version,
        run_id=earlier.info.run_id,
        experiment_id=experiment_id,
        train_key=context.train_key,
        metrics=dict(earlier.data.metrics),
        reused=True,
    )


def _fit_and_score(context: StepContext) -> _Trained:
    """Fit on the rows before the validation window; score and backtest it on the window."""
    spec, dataset = context.spec, context.dataset
    split = validation_split(dataset, spec)
    fitted = fit_model(dataset, split.train, spec)
    validation_features = dataset.matrix(split.test)
    window = Window.of_rows(dataset, split.test)
    window_scores, probabilities = window_probabilities(
        dataset, window, split.test, fitted.predict_proba
    )
    threshold = spec.strategy.bot.confidence_threshold
    scores = classification_metrics(dataset.targets(split.test), probabilities, threshold)
    # What live quality is compared with: the validation figures, the training rows'
    # feature distributions, and the out-of-sample probabilities' distribution (the
    # fit rows' own probabilities are optimistic).
    reference = build_reference(
        validation_features,
        dataset.targets(split.test),
        probabilities,
        threshold,
        training_features=dataset.matrix(split.train),
    )
    backtest = backtest_window(
        dataset, window, spec, context.strategy, window_scores, costs=context.costs
    )
    metrics = {metric_key("val", name): value for name, value in scores.items()}
    metrics |= {metric_key("val", "bt", name): value for name, value in backtest.items()}
    metrics |= {
        "train/rows": float(fitted.fit_rows),
        "train/early_stopping_rows": float(fitted.early_stopping_rows),
        "train/best_iteration": float(fitted.best_iteration),
        "data/usable_rows": float(len(dataset)),
        "data/positive_rate": dataset.positive_rate,
    }
    return _Trained(fitted, validation_features, reference, window, metrics)


def _log_and_register(
    context: StepContext,
    client: MlflowClient,
    registry: ModelRegistry,
    experiment_id: str,
    trained: _Trained,
) -> tuple[str, str]:
    """Log the run (params, metrics, spec, fingerprint, quality reference, model) and
    register its model; returns (run id, version)."""
    spec, dataset, fitted = context.spec, context.dataset, trained.fitted
    fingerprint = context.data.fingerprint()
    tags = _run_tags(context, trained.window.start_ms(dataset), trained.window.end_ms(dataset))
    started = datetime.fromtimestamp(context.data.start_ms / 1000, UTC)
    ended = datetime.fromtimestamp(context.data.end_ms / 1000, UTC)
    run_name = f"{spec.name} {started:%Y-%m-%d}..{ended:%Y-%m-%d}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        run_id = run.info.run_id
        mlflow.set_tags(tags)
        mlflow.log_params(
            spec.flat_params()
            | {f"fingerprint.{key}": str(value) for key, value in fingerprint.items()}
            | {"lightgbm_version": lgb.__version__}
            | {f"costs.{key}": str(value) for key, value in context.costs.to_dict().items()}
        )
        mlflow.log_metrics(trained.metrics)
        client.log_text(run_id, context.spec_text, "model_spec.toml")
        client.log_text(run_id, spec.features.to_toml(), "feature_spec.toml")
        log_json(client, run_id, spec.features.to_dict(), "feature_spec.json")
        log_json(client, run_id, fingerprint, "data_fingerprint.json")
        client.log_text(run_id, trained.reference.to_json(), QUALITY_REFERENCE_ARTIFACT)
        example = trained.validation_features.dropna().head(5)
        if example.empty:
            example = trained.validation_features.head(5)
        info = mlflow.lightgbm.log_model(
            fitted.booster,
            name=MODEL_NAME_IN_RUN,
            signature=infer_signature(example, fitted.predict_proba(example)),
            input_example=example,
            # Naming the requirement skips MLflow's inference, which re-imports the model
            # in a subprocess (seconds) and cannot know more than this.
            pip_requirements=[f"lightgbm=={lgb.__version__}"],
        )
        version = registry.register(
            spec.registered_model,
            info.model_uri,
            run_id=run_id,
            tags=_version_tags(context),
            # in shadow mode `challenger` is the version the engine shadows: only a
            # version that passed the gates gets it (research/training/promotion.py)
            aliases=() if spec.promotion.shadow else (CHALLENGER,),
        )
        mlflow.set_tag(f"{TAG_PREFIX}model_version", version.version)
    return run_id, version.version


def _run_tags(context: StepContext, window_start_ms: int, window_end_ms: int) -> dict[str, str]:
    spec, data = context.spec, context.data
    tags = {
        TRAIN_KEY_TAG: context.train_key,
        f"{TAG_PREFIX}spec_name": spec.name,
        f"{TAG_PREFIX}spec_hash": spec.content_hash,
        f"{TAG_PREFIX}registered_model": spec.registered_model,
        f"{TAG_PREFIX}feature_spec_hash": spec.features.content_hash,
        f"{TAG_PREFIX}strategy_file": str(spec.strategy.file),
        f"{TAG_PREFIX}strategy_hash": context.strategy.content_hash,
        f"{TAG_PREFIX}validation.start_ms": str(window_start_ms),
        f"{TAG_PREFIX}validation.end_ms": str(window_end_ms),
        COSTS_TAG: json.dumps(context.costs.to_dict(), sort_keys=True),
    }
    if context.spec_path is not None:
        tags[f"{TAG_PREFIX}spec_file"] = str(context.spec_path)
    tags |= {f"{TAG_PREFIX}data.{key}": str(value) for key, value in data.fingerprint().items()}
    return tags


def _version_tags(context: StepContext) -> dict[str, str]:
    """What a consumer of the version needs without opening the run. The lineage names
    (feature_spec_hash, strategy_hash, data_fingerprint) are the ones the dashboard's Models
    page and the model_promotions table use."""
    spec = context.spec
    guard = {} if spec.guard is None else {GUARD_RAILS_TAG: spec.guard.to_tag()}
    return guard | {
        FEATURE_SPEC_HASH_TAG: spec.features.content_hash,
        FEATURE_SPEC_TAG: json.dumps(spec.features.to_dict(), sort_keys=True),
        "train_key": context.train_key,
        "strategy_hash": context.strategy.content_hash,
        "data_fingerprint": context.data.content_hash,
        "spec_hash": spec.content_hash,
        "timeframe": spec.timeframe,
        "symbol": spec.symbol,
        "costs": json.dumps(context.costs.to_dict(), sort_keys=True),
    }
