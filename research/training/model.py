"""Fitting the LightGBM classifier and scoring its probabilities.

One fit procedure serves the final model and every walk-forward fold, so the folds measure
exactly what gets registered: the newest `early_stopping_fraction` of the training rows
(cut off with the same purge and embargo as any test window) picks the number of rounds,
the rest fits. Early stopping watches log loss, the quantity a probability threshold
depends on, rather than AUC, which ignores calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd

from research.training.dataset import Dataset
from research.training.spec import ModelSpec
from research.training.splits import IntArray, holdout_split
from tradepipe.quality import auc

__all__ = ["FittedModel", "classification_metrics", "fit_model"]

FloatArray = npt.NDArray[np.float64]
_EPSILON = 1e-15


@dataclass(frozen=True)
class FittedModel:
    booster: lgb.Booster
    best_iteration: int
    fit_rows: int
    early_stopping_rows: int

    def predict_proba(self, features: pd.DataFrame) -> FloatArray:
        """Probability of the take-profit label for each row of `features`."""
        predicted = self.booster.predict(features, num_iteration=self.best_iteration)
        return np.asarray(predicted, dtype=np.float64)


def fit_model(dataset: Dataset, train: IntArray, spec: ModelSpec) -> FittedModel:
    """Fit on the rows at positions `train` (time-ordered), early-stopped on their tail."""
    gap = {
        "purge_ms": round(spec.walk_forward.purge_seconds * 1000),
        "embargo_ms": round(spec.walk_forward.embargo_seconds * 1000),
    }
    inner = holdout_split(
        dataset.start_ms[train],
        dataset.label_end_ms[train],
        spec.training.early_stopping_fraction,
        what="early-stopping",
        **gap,
    )
    fit_rows, stop_rows = train[inner.train], train[inner.test]
    fit_set = lgb.Dataset(
        dataset.matrix(fit_rows), label=dataset.targets(fit_rows), free_raw_data=True
    )
    stop_set = lgb.Dataset(
        dataset.matrix(stop_rows), label=dataset.targets(stop_rows), reference=fit_set
    )
    booster = lgb.train(
        spec.lightgbm.booster_params(),
        fit_set,
        num_boost_round=spec.training.num_boost_round,
        valid_sets=[stop_set],
        valid_names=["early_stopping"],
        callbacks=[
            lgb.early_stopping(
                spec.training.early_stopping_rounds, first_metric_only=True, verbose=False
            )
        ],
    )
    best = int(booster.best_iteration) or spec.training.num_boost_round
    return FittedModel(
        booster=booster,
        best_iteration=best,
        fit_rows=len(fit_rows),
        early_stopping_rows=len(stop_rows),
    )


def classification_metrics(
    labels: npt.NDArray[np.integer], probabilities: FloatArray, threshold: float
) -> dict[str, float]:
    """AUC, log loss, and how good the strategy's entries are at its confidence threshold.

    precision_at_threshold is the take-profit rate among rows the strategy would enter on
    (NaN when it would enter on none); signal_rate the share of rows it would enter on.
    AUC is NaN when the rows hold one class only.
    """
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    chosen = p > threshold
    return {
        "auc": auc(y, p),
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p))),
        "precision_at_threshold": float(y[chosen].mean()) if chosen.any() else float("nan"),
        "signal_rate": float(chosen.mean()),
        "positive_rate": float(y.mean()),
        "rows": float(len(y)),
    }
