"""tradepipe.registry against a real MLflow SQLite registry: register, aliases, champion
hand-over with its tags, loading as a probability model, and refusing what is not one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import lightgbm as lgb
import mlflow
import mlflow.lightgbm
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature

from research.training import Workspace
from research.training.tracking import ensure_experiment, tracking_to
from tradepipe.registry import (
    CHALLENGER,
    CHAMPION,
    FEATURE_SPEC_TAG,
    PREVIOUS_CHAMPION_TAG,
    ModelLoadError,
    ModelNotFoundError,
    ModelRegistry,
    get_champion,
    load_model,
    set_champion,
)

FEATURES = ["ret_1", "rsi_14", "taker_net_flow"]
Register = Callable[..., str]


def frame(rows: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    data.loc[:5, "taker_net_flow"] = np.nan  # live features can be NaN; the model copes
    return data


@pytest.fixture(scope="module")
def registry(workspace: Workspace) -> ModelRegistry:
    return ModelRegistry(workspace.tracking_uri)


@pytest.fixture(scope="module")
def register(workspace: Workspace, registry: ModelRegistry) -> Register:
    """register(name, objective="binary") -> version: a small booster logged and registered."""

    def make(name: str, objective: str = "binary") -> str:
        data = frame()
        target = (data["ret_1"] + np.random.default_rng(2).normal(size=len(data)) > 0).astype(int)
        if objective != "binary":  # a return forecast in percent: scores, not probabilities
            target = data["ret_1"] * 100
        params = {"objective": objective, "verbosity": -1, "num_threads": 1, "seed": 1}
        booster = lgb.train(params, lgb.Dataset(data, target), num_boost_round=5)
        with tracking_to(workspace):
            experiment = ensure_experiment(
                registry._client, "registry-tests", workspace.artifact_root
            )
            with mlflow.start_run(experiment_id=experiment) as run:
                info = mlflow.lightgbm.log_model(
                    booster,
                    name="model",
                    signature=infer_signature(data, booster.predict(data)),
                    pip_requirements=[f"lightgbm=={lgb.__version__}"],
                )
        return registry.register(name, info.model_uri, run_id=run.info.run_id).version

    return make


def test_a_new_version_is_the_challenger(registry: ModelRegistry, register: Register) -> None:
    version = register("fresh")
    found = registry.version("fresh", version)
    assert found.aliases == (CHALLENGER,) and found.run_id
    assert registry.champion("fresh") is None
    assert get_champion("fresh", registry=registry) is None


def test_set_champion_hands_over_and_tags_the_previous_one(
    registry: ModelRegistry, register: Register
) -> None:
    first, second = register("handover"), register("handover")
    assert registry.set_champion("handover", first) is None
    assert registry.version("handover", first).aliases == (CHAMPION,)
    moment = datetime(2024, 5, 1, tzinfo=UTC)
    assert registry.set_champion("handover", second, at=moment) == first
    demoted = registry.version("handover", first)
    assert demoted.tags[PREVIOUS_CHAMPION_TAG] == "true"
    assert demoted.tags["demoted_at"] == moment.isoformat()
    assert demoted.tags["demoted_by"] == second
    assert CHAMPION not in demoted.aliases
    promoted = registry.version("handover", second)
    assert promoted.aliases == (CHAMPION,), "the challenger alias leaves with the promotion"
    # Idempotent: the champion again changes nothing, not even the tags.
    assert set_champion("handover", second, registry=registry) is None
    assert registry.version("handover", second).tags == promoted.tags


def test_load_model_predicts_positive_class_probabilities(
    registry: ModelRegistry, register: Register
) -> None:
    version = register("loader")
    registry.set_champion("loader", version)
    model = load_model("loader", registry=registry)
    assert model.version == version and model.feature_names == tuple(FEATURES)
    data = frame(50, seed=3)
    reordered = data[list(reversed(FEATURES))].assign(extra=1.0)
    probabilities = model.predict_proba(reordered)
    assert probabilities.shape == (50,)
    assert np.all((probabilities > 0) & (probabilities < 1))
    with pytest.raises(ModelLoadError, match="features lack columns \\['rsi_14'\\]"):
        model.predict_proba(data.drop(columns="rsi_14"))


def test_missing_models_and_aliases(registry: ModelRegistry, register: Register) -> None:
    register("lonely")
    with pytest.raises(ModelNotFoundError, match="no version with alias 'champion'"):
        registry.load("lonely", CHAMPION)
    with pytest.raises(ModelNotFoundError, match="no registered model nowhere version 3"):
        registry.version("nowhere", "3")
    with pytest.raises(ModelNotFoundError):
        registry.set_champion("lonely", "99")


def test_a_model_that_does_not_return_probabilities_is_refused(
    registry: ModelRegistry, register: Register
) -> None:
    version = register("regressor", objective="regression")
    model = registry.load("regressor", version=version)
    with pytest.raises(ModelLoadError, match="outside \\[0, 1\\]"):
        model.predict_proba(frame(50, seed=4))


def test_an_unreadable_feature_spec_tag_is_a_load_error(
    registry: ModelRegistry, register: Register
) -> None:
    version = register("tagged")
    registry.tag_version("tagged", version, {FEATURE_SPEC_TAG: "{not json"})
    with pytest.raises(ModelLoadError, match="unreadable feature_spec tag"):
        registry.load("tagged", version=version).feature_spec()


def test_models_versions_and_their_runs_are_read_through_the_registry(
    registry: ModelRegistry, register: Register
) -> None:
    first, second = register("it's listed"), register("it's listed")
    registry.set_champion("it's listed", first)
    listed = {model.name: model for model in registry.registered_models()}
    assert listed["it's listed"].aliases == {CHAMPION: first, CHALLENGER: second}
    versions = registry.versions("it's listed")  # a quote in the name is no filter syntax
    assert [found.version for found in versions] == [first, second]
    assert versions[0].aliases == (CHAMPION,) and versions[0].status == "READY"
    assert versions[0].created_at is not None and versions[0].created_at.tzinfo is UTC
    run_id = versions[0].run_id
    assert run_id is not None
    assert registry.run_record(run_id).tags.get("mlflow.runName")
    with pytest.raises(ModelNotFoundError, match=f"no run {'0' * 32} in"):
        registry.run_record("0" * 32)
