"""A real MLflow store (SQLite file and artifact folder) for the engine's model tests:
tiny LightGBM boosters trained on random feature rows, logged, registered through
`tradepipe.registry` with their feature spec tags, and promoted to champion."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
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
        seed: int = 1,
    ) -> str:
        """A new version of `name` (trained on `spec`'s features); its artifact's model
        description deleted when `corrupt` (the version then cannot be loaded)."""
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
        if champion:
            self.registry.set_champion(name, version.version)
        return version.version
