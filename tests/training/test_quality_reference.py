"""Training stores its quality reference with the model: the validation figures and the
training distributions that live quality is compared with, readable through the registry."""

from __future__ import annotations

import math

import mlflow
import pytest
from mlflow import MlflowClient

from research.training import Workspace, load_spec, train
from research.training.tracking import ensure_experiment, tracking_to
from tests.training.helpers import MODEL, SpecWriter
from tradepipe.registry import QUALITY_REFERENCE_ARTIFACT, ModelRegistry, RegistryError


def test_training_stores_the_quality_reference(
    workspace: Workspace, write_spec: SpecWriter
) -> None:
    path = write_spec(name="quality")
    trained = train(path, workspace=workspace)
    spec = load_spec(path)
    client = MlflowClient(workspace.tracking_uri, workspace.tracking_uri)
    artifacts = {item.path for item in client.list_artifacts(trained.run_id)}
    assert QUALITY_REFERENCE_ARTIFACT in artifacts

    reference = ModelRegistry(workspace.tracking_uri).quality_reference(MODEL, trained.version)
    assert reference is not None
    assert reference.threshold == spec.strategy.bot.confidence_threshold
    metrics = client.get_run(trained.run_id).data.metrics
    # the reference's figures are the run's validation metrics, computed apart
    assert reference.figures["auc"] == pytest.approx(metrics["val/auc"])
    assert reference.figures["precision_at_threshold"] == pytest.approx(
        metrics["val/precision_at_threshold"], nan_ok=True
    )
    assert reference.figures["rows"] == metrics["val/rows"]
    assert 0 <= reference.figures["hit_rate"] <= 1
    assert sum(b.count for b in reference.calibration) == metrics["val/rows"]
    assert set(reference.features) == set(spec.features.feature_names)
    for distribution in [*reference.features.values(), reference.probability]:
        assert math.fsum(distribution.fractions) == pytest.approx(1.0)
        assert distribution.count > 0
    assert reference.probability.count == metrics["val/rows"]


def test_a_version_without_a_reference_reads_none_and_a_broken_one_is_an_error(
    workspace: Workspace,
) -> None:
    registry = ModelRegistry(workspace.tracking_uri)
    with tracking_to(workspace) as client:
        experiment = ensure_experiment(client, "references", workspace.artifact_root)
        with mlflow.start_run(experiment_id=experiment) as plain:
            mlflow.log_text("x", "model.txt")
        with mlflow.start_run(experiment_id=experiment) as broken:
            mlflow.log_text('{"format": 1, "threshold": "high"}', QUALITY_REFERENCE_ARTIFACT)
    source = f"{workspace.artifact_root}/none"
    older = registry.register("no_reference", source, run_id=plain.info.run_id)
    assert registry.quality_reference("no_reference", older.version) is None
    bad = registry.register("no_reference", source, run_id=broken.info.run_id)
    with pytest.raises(RegistryError, match="quality reference"):
        registry.quality_reference("no_reference", bad.version)
