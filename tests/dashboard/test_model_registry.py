"""The Models page's read-only look at the MLflow registry, and how it degrades."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from streamlit_app import model_registry
from tests.dashboard.conftest import CHAMPION_VERSION, MODEL_NAME, MlflowStore
from tests.seed_data import DATA_FINGERPRINT, FEATURE_SPEC_HASH, MOMENTUM_HASH


def test_reads_models_versions_metrics_aliases_and_lineage(mlflow_store: MlflowStore) -> None:
    read = model_registry.read(mlflow_store.tracking_uri)
    assert read.problem is None
    (model,) = read.models
    assert model.name == MODEL_NAME and model.champion == CHAMPION_VERSION
    assert model.aliases == {"champion": "3", "challenger": "4"}
    assert [version.version for version in model.versions] == ["4", "3", "2", "1"]
    champion = model.versions[1]
    assert champion.aliases == ("champion",)
    assert champion.metrics == pytest.approx({"sharpe": 1.4, "auc": 0.64})
    assert model.lineage["3"] == {
        "data_fingerprint": f"{DATA_FINGERPRINT}-v3",  # a version tag
        "feature_spec_hash": FEATURE_SPEC_HASH,  # a run tag
        "strategy_hash": MOMENTUM_HASH,  # a run parameter
    }
    assert champion.run_id and champion.status == "READY" and champion.created_at is not None


def test_missing_local_store_is_reported_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "mlflow" / "mlflow.db"
    read = model_registry.read(f"sqlite:///{missing}")
    assert read.models == ()
    assert read.problem == f"no MLflow store at {missing} yet: no model has been trained"
    assert not missing.exists() and not missing.parent.exists()


def test_unreachable_server_is_one_message_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)  # read() sets them; restored afterwards
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    read = model_registry.read(f"http://user:pa55word@127.0.0.1:{port}")
    assert time.monotonic() - started < 10
    assert read.models == ()
    assert read.problem is not None
    assert read.problem.startswith(
        f"cannot read the MLflow registry at http://user:***@127.0.0.1:{port}"
    )
    assert "pa55word" not in read.problem
