"""The Models page's operator actions under Streamlit's AppTest, on a registry of its own
(the session's shared one must keep its champion): pin, a refused promotion while pinned,
unpin, promote, roll back, a missing reason; each action lands in the registry and the
trading database through tradepipe.model_ops, with `dashboard` as who."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.apptest import new_app, open_page, page_text, served_on
from tests.dashboard.conftest import MODEL_NAME, Dashboard, MlflowStore, build_mlflow_store
from tests.engine.helpers import query
from tradepipe.registry import ModelRegistry

KEY = "tradepipe_model_action"
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> MlflowStore:
    """Overrides the shared registry: these tests move its champion."""
    return build_mlflow_store(tmp_path_factory.mktemp("mlflow_actions"))


@pytest.fixture
def loopback() -> Iterator[None]:
    with served_on("127.0.0.1"):
        yield


def apply(at: AppTest, action: str, reason: str, version: str = "") -> str:
    at.selectbox(key=f"{KEY}_model").set_value(MODEL_NAME)
    at.selectbox(key=f"{KEY}_action").set_value(action)
    at.text_input(key=f"{KEY}_version").input(version)
    at.text_input(key=f"{KEY}_reason").input(reason)
    [button] = [button for button in at.button if button.label == "Apply"]
    button.click().run()
    assert not at.exception, [item.value for item in at.exception]
    outcome = [item.value for item in (*at.success, *at.error)]
    assert len(outcome) == 1, outcome
    return str(outcome[0])


def champion(store: MlflowStore) -> str | None:
    found = ModelRegistry(store.tracking_uri).champion(MODEL_NAME)
    return None if found is None else found.version


def test_operator_actions_on_the_models_page(
    dashboard: Dashboard, mlflow_store: MlflowStore, loopback: None
) -> None:
    at = open_page(new_app(), "models")
    assert "Operator actions" in page_text(at)

    assert apply(at, "pin", "") == "Give a reason: it is recorded with the action."
    assert apply(at, "pin", "audit of version 3") == (
        f"pin {MODEL_NAME}: champion 3 → 3 (audit of version 3)"
    )
    refused = apply(at, "promote", "try anyway", version="4")
    assert "is pinned at version 3" in refused and champion(mlflow_store) == "3"
    apply(at, "unpin", "audit done")
    assert apply(at, "promote", "better on live data", version="4") == (
        f"promote {MODEL_NAME}: champion 3 → 4 (better on live data)"
    )
    assert champion(mlflow_store) == "4"
    assert apply(at, "roll back", "hit rate fell").startswith(
        f"rollback {MODEL_NAME}: champion 4 → 3"
    )
    assert champion(mlflow_store) == "3"

    events = query(
        dashboard.database_url,
        "SELECT kind, payload FROM events WHERE kind LIKE 'model_%' ORDER BY id",
    )
    kinds = [row.kind for row in events]
    assert kinds == ["model_pinned", "model_unpinned", "model_promoted", "model_rolled_back"]
    assert all('"dashboard"' in str(row.payload) for row in events), events
