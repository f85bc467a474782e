"""`tradepipe models quality`: what a user can get wrong ends in one clear line (a bad
--since, a damaged decision log), and no evidence yet says how to get some."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()


@pytest.fixture
def evidence_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRADEPIPE_DECISION_LOG_DIR", str(tmp_path / "decisions"))
    monkeypatch.setenv("TRADEPIPE_MARKET_DATA_DIR", str(tmp_path / "market_data"))
    monkeypatch.setenv("TRADEPIPE_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def one_line_error(*args: str) -> str:
    result = runner.invoke(app, ["models", "quality", *args])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_no_evidence_yet_says_how_to_record_it(evidence_dirs: Path) -> None:
    result = runner.invoke(app, ["models", "quality", "some_model"])
    assert result.exit_code == 0, result.output
    assert "no recorded decision of some_model" in result.stdout
    assert "record_decisions" in result.stdout
    as_json = runner.invoke(app, ["models", "quality", "some_model", "--json"])
    assert as_json.exit_code == 0 and as_json.stdout.strip() == "[]"


def test_a_bad_since_and_a_damaged_log_are_one_line_each(evidence_dirs: Path) -> None:
    assert "--since 'yesterday': use an ISO 8601 time" in one_line_error(
        "some_model", "--since", "yesterday"
    )
    day = evidence_dirs / "decisions" / "day=2024-01-01"
    day.mkdir(parents=True)
    (day / "part-0-abc.parquet").write_bytes(b"not parquet")
    message = one_line_error("some_model")
    assert "part-0-abc.parquet cannot be read" in message
