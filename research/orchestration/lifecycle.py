"""Task bodies of the `model_lifecycle` DAG: one spec from candles to a promotion decision.

The steps map onto research.training's own idempotent steps, one Airflow task each:

    build_dataset -> train -> validate -> promote

- build_dataset fixes the candles of the run: the spec's [start, end) with the end cut at
  the run's data interval end, so a run (or a backfill of an old interval) never trains on
  candles from after its interval. A spec with a fixed window in the past (the demo spec)
  gets exactly its window; a spec without an end trains on everything stored up to the
  interval. It builds features and labels once to refuse an unusable window early, keeps
  them for the later steps (research/training/kept_datasets.py), and passes on a reference
  (data key, range, content hash), not the candles.
- train / validate are research.training.train / validate on those candles. Both are keyed
  by (spec, candles, strategy) content hashes, so re-running an interval finds the version
  it registered instead of training another one.
- promote is research.training.promote: it backtests the candidate and the champion with
  the consuming strategy on the same unseen window, applies the spec's gates, and moves the
  `champion` alias or records the refusal (a model_promotions row either way). Backtest,
  gate and decision are one task because research.training makes them one atomic,
  replayable step: its decision row is written before the alias moves, and splitting it
  would let a retry separate a gate verdict from its record. For a spec in shadow mode it
  first runs the shadow gate (research.training.shadow_gate) on the challenger in shadow:
  promoted to champion if its shadow results beat the champion's live ones, else refused;
  its verdict is in the task's XCom (`shadow_verdict`).

Every later task reloads the candles by reference and checks the content hash, so the three
steps provably see the same data; candles rewritten in between (a late ingest) fail the task
with a message saying to re-run the whole DAG run instead of silently mixing two data sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from research.marketdata.load import CandleData
from research.orchestration.common import DataInterval, json_safe
from research.training import (
    DatasetError,
    ResearchError,
    Workspace,
    load_spec,
    load_training_candles,
    promote,
    train,
    validate,
)
from research.training.evaluate import load_consuming_strategy
from research.training.kept_datasets import kept_dataset
from research.training.shadow_gate import judge_challenger

__all__ = [
    "build_spec_dataset",
    "promote_model",
    "train_model",
    "validate_model",
]

# The train-step metrics worth showing in XCom (the run in MLflow has all of them).
_TRAIN_METRICS = ("val/auc", "val/log_loss", "val/bt/sharpe", "val/bt/trades", "data/usable_rows")


def build_spec_dataset(
    spec_path: str, interval: DataInterval, workspace: Workspace | None = None
) -> dict[str, Any]:
    """Fix and check the run's candles for one spec; returns the data reference."""
    chosen = workspace or Workspace.from_settings()
    spec = load_spec(spec_path)
    load_consuming_strategy(spec)  # a wrong strategy file fails here, not after the data
    start_ms, window_end_ms = spec.data.window(interval.end_ms)
    end_ms = interval.end_ms if window_end_ms is None else window_end_ms
    if start_ms is not None and start_ms >= end_ms:
        raise DatasetError(
            f"{spec_path}: its data starts at {spec.data.start} but this run's data interval "
            f"ends at {interval.end.isoformat()}: nothing to train on yet"
        )
    reference = spec.data.reference
    candles = load_training_candles(
        reference, spec.timeframe, spec.symbol, chosen, start_ms=start_ms, end_ms=end_ms
    )
    dataset = kept_dataset(chosen.dataset_dir, candles, spec)  # the later steps load it
    return {
        "spec_path": spec_path,
        "spec_name": spec.name,
        "model_name": spec.registered_model,
        "reference": reference,
        "timeframe": spec.timeframe,
        "symbol": spec.symbol,
        "start_ms": start_ms,
        "end_ms": end_ms,
        "candles": candles.rows,
        "first_start_ms": candles.start_ms,
        "last_end_ms": candles.end_ms,
        "data_hash": candles.content_hash,
        "dataset_rows": len(dataset),
        "positive_rate": json_safe(dataset.positive_rate),
        "interval": interval.to_dict(),
    }


def train_model(data_ref: Mapping[str, Any], workspace: Workspace | None = None) -> dict[str, Any]:
    """Train and register (or find the version trained from the same inputs)."""
    chosen = workspace or Workspace.from_settings()
    trained = train(data_ref["spec_path"], _candles(data_ref, chosen), workspace=chosen)
    metrics = {name: trained.metrics[name] for name in _TRAIN_METRICS if name in trained.metrics}
    return {
        **data_ref,
        "version": trained.version,
        "run_id": trained.run_id,
        "train_key": trained.train_key,
        "train_reused": trained.reused,
        "train_metrics": json_safe(metrics),
        "train_summary": trained.summary(),
    }


def validate_model(
    trained: Mapping[str, Any], workspace: Workspace | None = None
) -> dict[str, Any]:
    """Walk-forward validation of the trained version (reads a recorded one on re-runs)."""
    chosen = workspace or Workspace.from_settings()
    result = validate(
        trained["spec_path"],
        _candles(trained, chosen),
        workspace=chosen,
        version=str(trained["version"]),
    )
    return {
        **trained,
        "walk_forward": json_safe(dict(result.aggregate)),
        "validation_reused": result.reused,
        "validation_summary": result.summary(),
    }


def promote_model(
    validated: Mapping[str, Any], workspace: Workspace | None = None
) -> dict[str, Any]:
    """Backtest against the champion, gate, and promote or record the refusal."""
    chosen = workspace or Workspace.from_settings()
    # shadow mode: the challenger in shadow is judged first (it may make way for this one)
    spec = load_spec(validated["spec_path"])
    shadow = judge_challenger(spec, chosen) if spec.promotion.shadow else None
    outcome = promote(
        validated["spec_path"],
        _candles(validated, chosen),
        workspace=chosen,
        version=str(validated["version"]),
    )
    return {
        "spec_name": validated["spec_name"],
        "model_name": outcome.model_name,
        "version": outcome.version,
        "run_id": outcome.run_id,
        "promoted": outcome.promoted,
        "champion": outcome.champion,
        "champion_before": outcome.champion_before,
        "reasons": list(outcome.reasons),
        "replayed": outcome.replayed,
        "shadow": outcome.shadow,
        "shadow_verdict": shadow.to_dict() if shadow is not None else None,
        "summary": outcome.summary(),
    }


def _candles(data_ref: Mapping[str, Any], workspace: Workspace) -> CandleData:
    """The candles build_dataset fixed, reloaded by reference and checked by hash."""
    candles = load_training_candles(
        str(data_ref["reference"]),
        str(data_ref["timeframe"]),
        str(data_ref["symbol"]),
        workspace,
        start_ms=data_ref["start_ms"],
        end_ms=int(data_ref["end_ms"]),
    )
    if candles.content_hash != data_ref["data_hash"]:
        raise ResearchError(
            f"{data_ref['reference']}: its candles in this run's window changed after "
            "build_dataset (ingested meanwhile?): clear the whole run so every step uses "
            "the same candles"
        )
    return candles
