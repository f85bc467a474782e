"""`tradepipe strategies` end to end: a temporary strategies folder, a migrated SQLite
database, the real registry sync and the real validation process."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from tests.support import venue_rest

runner = CliRunner()
SHIPPED = Path(__file__).resolve().parents[1] / "strategies"

CALM = """
from tradepipe.strategy import Strategy, StrategyParameters


class Calm(Strategy[StrategyParameters]):
    def on_candle(self, context):
        return None
"""
CALM_EDITED = CALM.replace("return None", "return None  # still calm")
BROKEN = "from tradepipe.strategy import Strategy\n\nclass Broken(Strategy:\n    pass\n"
EXPLODING = """
from tradepipe.strategy import Strategy, StrategyParameters


class Exploding(Strategy[StrategyParameters]):
    def on_candle(self, context):
        raise RuntimeError("boom")
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    shutil.copy(SHIPPED / "ema_rsi.py", strategies / "ema_rsi.py")
    (strategies / "calm.py").write_text(CALM)
    monkeypatch.setenv("TRADEPIPE_STRATEGIES_DIR", str(strategies))
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    return strategies


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def one_line_error(*args: str) -> str:
    code, _, stderr = invoke(*args)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 1, stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    return lines[0]


def sync_report() -> dict[str, list[object]]:
    code, stdout, stderr = invoke("strategies", "sync", "--json")
    assert code == 0, stderr
    report: dict[str, list[object]] = json.loads(stdout)
    return report


def names(rows: list[object]) -> list[str]:
    return [row["name"] for row in rows]  # type: ignore[index]


def test_sync_list_show_through_add_edit_break_and_remove(folder: Path) -> None:
    assert "no strategies registered yet" in invoke("strategies", "list")[1]

    code, stdout, stderr = invoke("strategies", "sync")
    assert code == 0, stderr
    assert "synced: added calm, ema_rsi; 0 unchanged" in stdout
    listing = invoke("strategies", "list")[1]
    assert "calm" in listing and "ema_rsi" in listing and "valid" in listing
    assert sync_report()["unchanged"] == ["calm", "ema_rsi"]  # idempotent

    (folder / "calm.py").write_text(CALM_EDITED)
    (folder / "broken.py").write_text(BROKEN)
    report = sync_report()
    assert names(report["edited"]) == ["calm"] and names(report["invalid"]) == ["broken"]
    [broken] = report["invalid"]
    assert broken["error_line"] == 3  # type: ignore[index]
    assert f"{folder / 'broken.py'}:3: syntax error" in broken["error"]  # type: ignore[index]

    code, shown, _ = invoke("strategies", "show", "calm")
    assert code == 0
    digest = hashlib.sha256(CALM_EDITED.encode()).hexdigest()
    assert digest in shown and "Calm" in shown and "no bots use it" in shown
    assert "versions" in shown and " 2 " in shown
    code, shown, _ = invoke("strategies", "show", "broken")
    assert code == 0 and "invalid" in shown
    assert f"error: {folder / 'broken.py'}:3: syntax error" in shown
    assert "invalid" in invoke("strategies", "list")[1]

    (folder / "calm.py").unlink()
    report = sync_report()
    assert names(report["removed"]) == ["calm"]
    assert "removed" in invoke("strategies", "show", "calm")[1]


def test_show_lists_the_bots_using_a_strategy(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("strategies", "sync")[0] == 0
    with venue_rest(("BTCUSDT",)) as venue:  # `bots add` asks the venue about the symbol
        monkeypatch.setenv("TRADEPIPE_FEED_REST_URL", venue)
        added = invoke("bots", "add", "alpha", "--strategy", "ema_rsi", "--symbol", "BTCUSDT",
                       "--timeframe", "1m", "--capital", "100", "--take-profit-pct", "1",
                       "--stop-loss-pct", "1", "--max-holding-seconds", "3600")  # fmt: skip
    assert added[0] == 0, added[2]
    code, shown, _ = invoke("strategies", "show", "ema_rsi")
    assert code == 0 and "bots using it" in shown and "alpha" in shown and "BTCUSDT" in shown
    assert "no bots use it" in invoke("strategies", "show", "calm")[1]


def test_user_errors_are_one_line(folder: Path, tmp_path: Path) -> None:
    assert "'nope'" in one_line_error("strategies", "show", "nope")
    missing = tmp_path / "elsewhere"
    runner_env = {"TRADEPIPE_STRATEGIES_DIR": str(missing)}
    result = runner.invoke(app, ["strategies", "sync"], env=runner_env)
    assert result.exit_code == 1 and str(missing) in result.stderr
    assert "does not exist" in result.stderr
    assert "no strategies registered yet" in invoke("strategies", "list")[1]  # nothing written


def test_validate_a_good_file(folder: Path) -> None:
    code, stdout, stderr = invoke("strategies", "validate", str(folder / "calm.py"))
    assert code == 0, stderr
    assert stdout.startswith("OK ") and "class Calm" in stdout
    assert hashlib.sha256(CALM.encode()).hexdigest() in stdout


def test_validate_refuses_with_file_and_line(folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text(BROKEN)
    assert f"{broken}:3: syntax error" in one_line_error("strategies", "validate", str(broken))
    exploding = tmp_path / "exploding.py"
    exploding.write_text(EXPLODING)
    error = one_line_error("strategies", "validate", str(exploding))
    assert f"{exploding}:7:" in error and "RuntimeError" in error and "boom" in error
    missing = tmp_path / "missing.py"
    assert "cannot read" in one_line_error("strategies", "validate", str(missing))


def test_validate_against_a_bots_config(folder: Path) -> None:
    # the venue is not what this test is about: skip asking it
    added = invoke("bots", "add", "alpha", "--strategy", "ema_rsi", "--symbol", "BTCUSDT",
                   "--timeframe", "1m", "--capital", "100", "--take-profit-pct", "1",
                   "--stop-loss-pct", "1", "--max-holding-seconds", "3600",
                   "--skip-symbol-check")  # fmt: skip
    assert added[0] == 0, added[2]
    calm = str(folder / "calm.py")
    code, stdout, stderr = invoke("strategies", "validate", calm, "--bot", "alpha")
    assert code == 0, stderr
    assert "against alpha" in stdout
    assert "'nope'" in one_line_error("strategies", "validate", calm, "--bot", "nope")
