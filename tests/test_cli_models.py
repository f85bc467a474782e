"""`tradepipe models`: on a real MLflow store and trading database, promote, roll back, pin
and unpin a champion; each action records who and why in the registry and the database; a
pinned champion moves for nobody, a promotion run included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app
from tests.engine.model_store import ModelStore
from tradepipe.registry import ModelPinnedError

MODEL = "demo_model"
runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    models = ModelStore.under(tmp_path / "var")  # the settings' default MLflow store
    for seed in (1, 2, 3):  # version 3 ends as champion, 1 and 2 as previous champions
        models.register(MODEL, seed=seed)
    return models


def invoke_json(*args: str) -> Any:
    result = runner.invoke(app, ["models", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line_error(*args: str) -> str:
    result = runner.invoke(app, ["models", *args])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_rollback_pin_promote_unpin_end_to_end(store: ModelStore) -> None:
    [listed] = invoke_json("list")
    assert (listed["champion"], listed["previous_champion"], listed["versions"]) == ("3", "2", 3)

    done = invoke_json("rollback", MODEL, "--reason", "live hit rate fell")
    assert (done["champion_before"], done["champion_after"]) == ("3", "2")
    assert done["by"].startswith("cli") and done["reason"] == "live hit rate fell"
    assert store.registry.champion(MODEL).version == "2"  # type: ignore[union-attr]
    # A second rollback goes further back, never back to the version just rolled back.
    assert invoke_json("list")[0]["previous_champion"] == "1"

    invoke_json("pin", MODEL, "--reason", "hold during the audit")
    assert "pinned at version 2" in one_line_error("promote", MODEL, "3", "--reason", "try")
    with pytest.raises(ModelPinnedError):  # what a promotion run calls refuses too
        store.registry.set_champion(MODEL, "3")
    assert store.registry.champion(MODEL).version == "2"  # type: ignore[union-attr]

    invoke_json("unpin", MODEL, "--reason", "audit done")
    done = invoke_json("promote", MODEL, "3", "--reason", "fixed features")
    assert (done["champion_before"], done["champion_after"]) == ("2", "3")

    detail = invoke_json("show", MODEL)
    assert detail["summary"]["pin"] is None and detail["summary"]["champion"] == "3"
    operator = [d["reasons"]["operator"] for d in detail["decisions"] if "operator" in d["reasons"]]
    assert [(o["action"], o["champion_after"], o["reason"]) for o in operator] == [
        ("promote", "3", "fixed features"),
        ("rollback", "2", "live hit rate fell"),
    ]
    version_3 = next(row for row in detail["versions"] if row["version"] == "3")
    assert version_3["aliases"] == ["champion"]
    assert version_3["tags"]["promotion_reason"] == "fixed features"
    assert version_3["rolled_back"] is True  # tagged when it was rolled back, kept after

    shown = runner.invoke(app, ["models", "show", MODEL])
    assert shown.exit_code == 0 and "live hit rate fell" in shown.stdout

    assert invoke_json("list")[0]["previous_champion"] == "2"
    store.register(MODEL, seed=4)  # a promotion run demotes 3 the ordinary way:
    assert invoke_json("list")[0]["previous_champion"] == "3"  # a rollback target again


def test_every_action_needs_a_reason_and_a_known_model(store: ModelStore) -> None:
    assert "say why" in one_line_error("rollback", MODEL, "--reason", "  ")
    assert "no registered model" in one_line_error("pin", "nope", "--reason", "x")
    assert "no registered model" in one_line_error("promote", MODEL, "9", "--reason", "x")
    assert "is not pinned" in one_line_error("unpin", MODEL, "--reason", "x")
    invoke_json("rollback", MODEL, "--reason", "one")
    invoke_json("rollback", MODEL, "--reason", "two")
    assert "no earlier champion" in one_line_error("rollback", MODEL, "--reason", "three")


def test_events_record_every_action(store: ModelStore) -> None:
    from app.cli.common import database_session
    from tradepipe.db import recent_events

    invoke_json("pin", MODEL, "--reason", "freeze")
    invoke_json("unpin", MODEL, "--reason", "thaw")
    with database_session() as session:
        kinds = [event.kind for event in recent_events(session)]
    assert kinds[:2] == ["model_unpinned", "model_pinned"]
