"""The cost of trying a model version in a separate process before the engine loads it.

A LightGBM model of the demo's size (default features, 100 rounds of 31 leaves) is logged
to a fresh MLflow store (SQLite and an artifact folder under a temporary directory) and
registered. One check (`live.model_check.ModelChecker.check`: the request to the running
worker, the registry lookup and load there, one prediction, the answer) is measured against
its reference in the same run: the same load and one-row prediction in this process, which
is what the engine did alone before. The worker's start (a fresh interpreter importing
mlflow and LightGBM) is paid once per engine and printed apart. Nothing here asserts a time.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import mlflow
import mlflow.lightgbm
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from benchmarks.harness import Measurement, best_of, report
from live.model_check import ModelChecker
from research.training import Workspace
from research.training.tracking import ensure_experiment, tracking_to
from tradepipe.features import default_spec
from tradepipe.registry import ModelRegistry

NAME = "bench_model_check"
ROUNDS = 100
REPEATS = 7


def _register(workspace: Workspace, registry: ModelRegistry) -> str:
    names = list(default_spec().feature_names)
    rng = np.random.default_rng(1)
    data = pd.DataFrame(rng.normal(size=(5_000, len(names))), columns=names)
    target = (rng.random(len(data)) > 0.5).astype(int)
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "num_leaves": 31}
    booster = lgb.train(params, lgb.Dataset(data, target), num_boost_round=ROUNDS)
    with tracking_to(workspace):
        experiment = ensure_experiment(registry._client, "bench", workspace.artifact_root)
        with mlflow.start_run(experiment_id=experiment) as run:
            info = mlflow.lightgbm.log_model(
                booster,
                name="model",
                signature=infer_signature(data, booster.predict(data)),
                pip_requirements=[f"lightgbm=={lgb.__version__}"],
            )
    return registry.register(NAME, info.model_uri, run_id=run.info.run_id).version


def run() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_model_check_") as folder:
        workspace = Workspace.under(Path(folder))
        registry = ModelRegistry(workspace.tracking_uri)
        version = _register(workspace, registry)
        checker = ModelChecker(workspace.tracking_uri)
        try:
            started = time.perf_counter()
            checker.start()
            print(f"  worker start (once per engine): {time.perf_counter() - started:.2f} s")

            def check() -> None:
                result = checker.check(NAME, version)
                if not result.ok:
                    raise RuntimeError(f"the benchmark's model was refused: {result.reason}")

            check()  # the worker's first load warms its registry client
            isolated = Measurement(
                "check in the worker process", best_of(REPEATS, check), 1, "checks"
            )
        finally:
            checker.close()

        def load_here() -> None:
            model = registry.load(NAME, version=version)
            columns = list(model.feature_names)
            model.predict_proba(pd.DataFrame([[0.0] * len(columns)], columns=columns))

        load_here()
        in_process = Measurement(
            "load + predict in this process", best_of(REPEATS, load_here), 1, "loads"
        )
    report("one model version tried before the engine loads it", isolated, in_process)
