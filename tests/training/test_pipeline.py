"""The pipeline against a real MLflow SQLite store and trading database: train logs and
registers, validate walks forward, promote gates and records, and every step re-runs
idempotently. One module-wide store; the steps run once in fixtures, tests read results."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from research.marketdata.load import CandleData
from research.training import (
    PipelineStateError,
    RunOutcome,
    Workspace,
    load_spec,
    promote,
    run,
    train,
    validate,
)
from tests.training.helpers import MODEL, STRATEGY, small_spec, to_toml
from tradepipe.db import create_engine_for, list_model_promotions, session_scope
from tradepipe.enums import PromotionDecision
from tradepipe.features import compute_features
from tradepipe.guard import GUARD_RAILS_TAG, GuardRails
from tradepipe.registry import CHALLENGER, CHAMPION, ModelRegistry

WORSE = {  # barely trained: near-constant probabilities, no entries on the validation window
    "name": "worse",
    "lightgbm.learning_rate": 0.0001,
    "training.num_boost_round": 2,
}


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("specs")
    written = {}
    for name, changes in {
        "good": {},
        "worse": WORSE,
        "unvalidated": {"name": "unvalidated", "lightgbm.num_leaves": 7},
        "untrained": {"gates.min_trades": 2},
    }.items():
        written[name] = folder / f"{name}.toml"
        written[name].write_text(to_toml(small_spec(**changes)))
    return written


@pytest.fixture(scope="module")
def first(specs: dict[str, Path], workspace: Workspace) -> RunOutcome:
    return run(specs["good"], workspace=workspace)


@pytest.fixture(scope="module")
def second(first: RunOutcome, specs: dict[str, Path], workspace: Workspace) -> RunOutcome:
    return run(specs["worse"], workspace=workspace)


@pytest.fixture(scope="module")
def client(workspace: Workspace) -> MlflowClient:
    return MlflowClient(workspace.tracking_uri, workspace.tracking_uri)


@pytest.fixture
def global_tracking(workspace: Workspace) -> Iterator[None]:
    """MLflow's process-wide URIs at the workspace, as a user's notebook would set them."""
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(workspace.tracking_uri)
    mlflow.set_registry_uri(workspace.tracking_uri)
    yield
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


def test_train_logs_params_metrics_tags_and_artifacts(
    first: RunOutcome, client: MlflowClient, candles: CandleData, specs: dict[str, Path]
) -> None:
    spec = load_spec(specs["good"])
    logged = client.get_run(first.train.run_id)
    params, metrics, tags = logged.data.params, logged.data.metrics, logged.data.tags
    assert params["lightgbm.num_leaves"] == "15" and params["labels.take_profit_pct"] == "0.7"
    assert params["fingerprint.content_hash"] == candles.content_hash
    assert params["features.hash"] == spec.features.content_hash
    assert 0.5 < metrics["val/auc"] < 1 and 0 < metrics["val/log_loss"] < 1
    for name in ("val/precision_at_threshold", "val/bt/sharpe", "val/bt/max_drawdown"):
        assert name in metrics
    assert metrics["val/bt/trades"] > 0 and metrics["train/best_iteration"] >= 1
    assert tags["tradepipe.feature_spec_hash"] == spec.features.content_hash
    assert tags["tradepipe.data.content_hash"] == candles.content_hash
    assert tags["tradepipe.data.source"] == "store:synthetic/BTCUSDT/1m"
    assert tags["tradepipe.data.rows"] == str(candles.rows)
    assert tags["tradepipe.strategy_hash"] == hashlib.sha256(STRATEGY.read_bytes()).hexdigest()
    assert tags["tradepipe.spec_hash"] == spec.content_hash
    artifacts = {item.path for item in client.list_artifacts(first.train.run_id)}
    assert {"model_spec.toml", "feature_spec.toml", "feature_spec.json"} <= artifacts
    assert {"data_fingerprint.json", "walk_forward.json"} <= artifacts
    feature_file = client.download_artifacts(first.train.run_id, "feature_spec.json")
    assert json.loads(Path(feature_file).read_text()) == spec.features.to_dict()


def test_train_registers_a_version_with_its_lineage(
    first: RunOutcome, specs: dict[str, Path], workspace: Workspace
) -> None:
    version = ModelRegistry(workspace.tracking_uri).version(MODEL, first.version)
    assert version.run_id == first.train.run_id
    assert version.tags["train_key"] == first.train.train_key
    assert json.loads(version.tags["feature_spec"])["return_horizons"] == [1, 3, 6, 12, 24]
    # the spec's live guard rails travel with the version: the engine reads them there
    assert GuardRails.from_tag(version.tags[GUARD_RAILS_TAG]) == load_spec(specs["good"]).guard


def test_the_champion_loads_by_alias_and_predicts_probabilities(
    first: RunOutcome, workspace: Workspace, candles: CandleData, global_tracking: None
) -> None:
    loaded = ModelRegistry(workspace.tracking_uri).load(MODEL, CHAMPION)
    feature_spec = loaded.feature_spec()
    assert feature_spec is not None and loaded.version == first.version
    features = compute_features(candles.candles.iloc[-500:], feature_spec).iloc[100:]
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL}@{CHAMPION}")
    predicted = np.asarray(pyfunc.predict(features))
    assert predicted.shape == (400,)
    assert np.all((predicted >= 0) & (predicted <= 1))
    assert len(np.unique(predicted)) > 2, "probabilities, not classes"
    assert np.allclose(loaded.predict_proba(features), predicted)


def test_walk_forward_is_logged_per_fold_and_aggregated(
    first: RunOutcome, client: MlflowClient
) -> None:
    folds = first.validation.folds
    assert [fold.fold for fold in folds] == [1, 2, 3]
    for earlier, later in itertools.pairwise(folds):
        assert earlier.test_end_ms <= later.test_start_ms
        assert earlier.train_rows < later.train_rows
    metrics = client.get_run(first.train.run_id).data.metrics
    for fold in (1, 2, 3):
        for name in ("auc", "log_loss", "bt/sharpe", "bt/trades", "train_rows"):
            assert f"wf/fold_{fold}/{name}" in metrics
    assert metrics["wf/trades_total"] == sum(fold.metrics["bt/trades"] for fold in folds)
    assert metrics["wf/trades_total"] > 0
    assert 0.4 < metrics["wf/auc_mean"] < 1


def test_the_first_model_passing_the_gates_becomes_champion(
    first: RunOutcome, workspace: Workspace
) -> None:
    assert first.promoted and first.reasons == ()
    assert first.promotion.champion_before is None
    gates = {gate.name: gate for gate in first.promotion.gates}
    assert set(gates) == {
        "min_trades",
        "min_sharpe",
        "max_drawdown",
        "beats_champion",
        "no_lookahead",
        "champion_not_pinned",
    }
    assert gates["beats_champion"].detail == "no champion yet"
    lookahead = gates["no_lookahead"]
    assert lookahead.passed and "nothing in the past changed" in lookahead.detail
    registry = ModelRegistry(workspace.tracking_uri)
    champion = registry.champion(MODEL)
    assert champion is not None and champion.version == first.version
    assert champion.tags["promotion_decision"] == "promoted"
    assert CHALLENGER not in champion.aliases


def test_a_worse_model_is_refused_with_reasons(
    first: RunOutcome, second: RunOutcome, workspace: Workspace, client: MlflowClient
) -> None:
    assert not second.promoted and second.version != first.version
    failed = {gate.name for gate in second.promotion.gates if not gate.passed}
    assert "beats_champion" in failed
    assert any(reason.startswith("beats_champion: sharpe none vs champion version")
               for reason in second.reasons)  # fmt: skip
    assert " refused: " in second.summary() and "beats_champion" in second.summary()
    registry = ModelRegistry(workspace.tracking_uri)
    assert registry.champion(MODEL).version == first.version  # type: ignore[union-attr]
    refused = registry.version(MODEL, second.version)
    assert refused.tags["promotion_decision"] == "refused"
    assert "beats_champion" in refused.tags["promotion_reasons"]
    assert CHALLENGER in refused.aliases
    tags = client.get_run(second.train.run_id).data.tags
    assert tags["tradepipe.promotion.decision"] == "refused"


def test_every_decision_is_a_database_row(
    first: RunOutcome, second: RunOutcome, workspace: Workspace, candles: CandleData
) -> None:
    engine = create_engine_for(workspace.database_url)
    with session_scope(engine) as session:
        rows = {row.version: row for row in list_model_promotions(session, model_name=MODEL)}
    engine.dispose()
    assert set(rows) == {first.version, second.version}
    promoted, refused = rows[first.version], rows[second.version]
    assert promoted.decision is PromotionDecision.PROMOTED and promoted.alias == CHAMPION
    assert refused.decision is PromotionDecision.REFUSED
    assert refused.reasons["beats_champion"]["passed"] is False
    assert refused.reasons["beats_champion"]["champion_version"] == first.version
    assert promoted.run_id == first.train.run_id
    assert promoted.data_fingerprint == candles.content_hash
    assert promoted.strategy_hash == hashlib.sha256(STRATEGY.read_bytes()).hexdigest()
    assert promoted.metrics["walk_forward"]["wf/trades_total"] > 0


def test_re_running_is_idempotent(
    first: RunOutcome,
    second: RunOutcome,
    specs: dict[str, Path],
    workspace: Workspace,
    client: MlflowClient,
) -> None:
    again = promote(specs["good"], workspace=workspace)
    assert again.replayed and again.promoted and again.version == first.version
    assert again.champion == first.version
    refused_again = promote(specs["worse"], workspace=workspace, version=second.version)
    assert refused_again.replayed and not refused_again.promoted
    assert refused_again.reasons == second.reasons
    rerun = run(specs["good"], workspace=workspace)
    assert rerun.train.reused and rerun.validation.reused and rerun.promotion.replayed
    assert rerun.version == first.version
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 2
    history = client.get_metric_history(first.train.run_id, "wf/fold_1/auc")
    assert len(history) == 1, "validation logged twice"
    engine = create_engine_for(workspace.database_url)
    with session_scope(engine) as session:
        assert len(list_model_promotions(session, model_name=MODEL)) == 2
    engine.dispose()
    champion = ModelRegistry(workspace.tracking_uri).champion(MODEL)
    assert champion is not None and champion.version == first.version


def test_steps_out_of_order_are_refused(
    second: RunOutcome, specs: dict[str, Path], workspace: Workspace
) -> None:
    with pytest.raises(PipelineStateError, match="run `tradepipe research train --spec"):
        validate(specs["untrained"], workspace=workspace)
    trained = train(specs["unvalidated"], workspace=workspace)
    with pytest.raises(PipelineStateError, match="has no walk-forward validation"):
        promote(specs["unvalidated"], workspace=workspace)
    with pytest.raises(PipelineStateError, match="was not trained from this spec"):
        validate(specs["good"], workspace=workspace, version=trained.version)
