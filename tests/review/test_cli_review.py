"""`tradepipe live review` on bad input: one line naming the problem, exit 1, nothing kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from app.cli import app
from tradepipe.db import upgrade_database


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'trading.db'}"
    upgrade_database(url)
    monkeypatch.setenv("TRADEPIPE_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", url)
    return url


def review(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["live", "review", *args])
    return result.exit_code, result.output


def reviews_kept(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM live_reviews")).scalar())
    finally:
        engine.dispose()


def test_a_bot_without_recorded_decisions_is_one_line(home: str) -> None:
    code, output = review("--bot", "ghost", "--json")
    assert code == 1
    assert "bot ghost: no decisions recorded" in output and "record_decisions" in output
    assert "Traceback" not in output
    assert reviews_kept(home) == 0


def test_bad_times_are_one_line(home: str) -> None:
    code, output = review("--bot", "a", "--since", "yesterday")
    assert code == 1 and "--since 'yesterday' is not a date" in output
    code, output = review("--bot", "a", "--since", "2024-01-02", "--until", "2024-01-01")
    assert code == 1 and "--until 2024-01-01 is not after --since 2024-01-02" in output
    assert reviews_kept(home) == 0


def test_the_bot_is_required() -> None:
    code, output = review("--json")
    assert code == 2 and "--bot" in output
