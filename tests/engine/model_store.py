"""A real MLflow store (SQLite file and artifact folder) for the engine's model tests:
tiny LightGBM boosters trained on random feature rows, logged, registered through
`tradepipe.registry` with their feature spec tags, and promoted to champion. A version's
LightGBM file can be damaged as a disk, a copy or an upload would damage it (`DAMAGES`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import lightgbm as lgb
import mlflow
import mlflow.lightgbm
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from research.training import Workspace
from research.training.tracking import ensure_experiment, tracking_to
from tradepipe.features import FeatureSpec, default_spec
from tradepipe.registry import FEATURE_SPEC_HASH_TAG, FEATURE_SPEC_TAG, ModelRegistry

Damage = Literal["truncate", "garbage", "empty"]
# truncate: the first half of the file (LightGBM's parser then calls std::terminate: the
# process that loads it aborts); garbage: random bytes of the same size; empty: no bytes.
DAMAGES: tuple[Damage, ...] = ("truncate", "garbage", "empty")


@dataclass
class ModelStore:
    workspace: Workspace
    registry: ModelRegistry

    @classmethod
    def under(cls, root: Path) -> ModelStore:
        workspace = Workspace.under(root)
        return cls(workspace, ModelRegistry(workspace.tracking_uri))

    @property
    def tracking_uri(self) -> str:
        return self.workspace.tracking_uri

    def register(
        self,
        name: str,
        *,
        spec: FeatureSpec | None = None,
        champion: bool = True,
        corrupt: bool = False,
        damage: Damage | None = None,
        seed: int = 1,
    ) -> str:
        """A new version of `name` (trained on `spec`'s features); its artifact's model
        description deleted when `corrupt` (the version then cannot be loaded); its
        LightGBM file damaged (`damage_model_file`) before it becomes champion."""
        spec = spec or default_spec()
        names = list(spec.feature_names)
        rng = np.random.default_rng(seed)
        data = pd.DataFrame(rng.normal(size=(300, len(names))), columns=names)
        target = (rng.random(300) > 0.5).astype(int)
        params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "seed": seed}
        booster = lgb.train(params, lgb.Dataset(data, target), num_boost_round=3)
        with tracking_to(self.workspace):
            experiment = ensure_experiment(
                self.registry._client, "engine-tests", self.workspace.artifact_root
            )
            with mlflow.start_run(experiment_id=experiment) as run:
                info = mlflow.lightgbm.log_model(
                    booster,
                    name="model",
                    signature=infer_signature(data, booster.predict(data)),
                    pip_requirements=[f"lightgbm=={lgb.__version__}"],
                )
        tags = {
            FEATURE_SPEC_TAG: json.dumps(spec.to_dict(), sort_keys=True),
            FEATURE_SPEC_HASH_TAG: spec.content_hash,
        }
        version = self.registry.register(name, info.model_uri, run_id=run.info.run_id, tags=tags)
        if corrupt:
            location = self.registry._client.get_logged_model(info.model_id).artifact_location
            (Path(urlparse(str(location)).path) / "MLmodel").unlink()
        if damage is not None:
            self.damage_model_file(name, version.version, damage)
        if champion:
            self.registry.set_champion(name, version.version)
        return version.version

    def model_file(self, name: str, version: str) -> Path:
        """The LightGBM file of `name` version `version` in the artifact store."""
        location = self.registry._artifact_location(self.registry.version(name, version))
        return Path(urlparse(location).path) / "model.lgb"

    def damage_model_file(self, name: str, version: str, how: Damage) -> Path:
        path = self.model_file(name, version)
        data = path.read_bytes()
        if how == "truncate":
            path.write_bytes(data[: len(data) // 2])
        elif how == "garbage":
            path.write_bytes(np.random.default_rng(len(data)).bytes(len(data)))
        elif how == "empty":
            path.write_bytes(b"")
        else:
            raise ValueError(f"unknown damage {how!r}: one of {DAMAGES}")
        return path
