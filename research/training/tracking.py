"""MLflow experiment tracking for the research pipeline (runs, params, metrics, artifacts).

Model *registry* calls live in `tradepipe.registry`; this module only records runs. MLflow's
model logging (`mlflow.lightgbm.log_model`) works through the process-wide tracking URI and
the active run, so `tracking_to` sets that URI for the duration of one pipeline step and puts
the previous one back: the Workspace, not the environment, decides where a step writes.
Everything else, registry included, goes through clients built for the workspace's URI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Run

from research.training.errors import PipelineStateError
from research.training.workspace import Workspace

__all__ = [
    "TAG_PREFIX",
    "client_for",
    "ensure_experiment",
    "find_training_run",
    "log_json",
    "metric_key",
    "tracking_to",
]

TAG_PREFIX = "tradepipe."
# MLflow metric names allow these characters only; ours are built from known parts anyway.
_METRIC_NAME = re.compile(r"[^A-Za-z0-9_\-./ ]")


@contextmanager
def tracking_to(workspace: Workspace) -> Iterator[MlflowClient]:
    """Point MLflow's fluent API at the workspace's store while the block runs."""
    _prepare_sqlite(workspace.tracking_uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(workspace.tracking_uri)
    try:
        yield client_for(workspace)
    finally:
        mlflow.set_tracking_uri(previous)


def client_for(workspace: Workspace) -> MlflowClient:
    _prepare_sqlite(workspace.tracking_uri)
    return MlflowClient(tracking_uri=workspace.tracking_uri, registry_uri=workspace.tracking_uri)


def ensure_experiment(client: MlflowClient, name: str, artifact_root: Path) -> str:
    """The experiment's id, creating it with its artifacts under `artifact_root/<name>`."""
    found = client.get_experiment_by_name(name)
    if found is None:
        location = artifact_root / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        location.mkdir(parents=True, exist_ok=True)
        return str(client.create_experiment(name, artifact_location=location.as_uri()))
    if found.lifecycle_stage != "active":
        raise PipelineStateError(
            f"MLflow experiment {name!r} is deleted: restore it (mlflow experiments restore) "
            "or set another `experiment` in the spec"
        )
    return str(found.experiment_id)


def find_training_run(client: MlflowClient, experiment_id: str, train_key: str) -> Run | None:
    """The newest finished run trained from this exact (spec, data, strategy), if any."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{TAG_PREFIX}train_key` = '{train_key}' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def log_json(client: MlflowClient, run_id: str, payload: Mapping[str, Any], name: str) -> None:
    client.log_text(run_id, json.dumps(payload, indent=2, sort_keys=True, default=str), name)


def metric_key(*parts: str) -> str:
    return _METRIC_NAME.sub("_", "/".join(parts))


def _prepare_sqlite(uri: str) -> None:
    """MLflow creates a SQLite file but not its folder; create the folder."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
