"""`tradepipe bots` end to end on a migrated SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradepipe.cli import app

runner = CliRunner()
STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"
ADD = ["bots", "add", "alpha", "--strategy", "ema_rsi", "--symbol", "BTCUSDT", "--timeframe",
       "1m", "--capital", "100", "--take-profit-pct", "1", "--stop-loss-pct", "1",
       "--max-holding-seconds", "3600"]  # fmt: skip


@pytest.fixture(autouse=True)
def migrated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_STRATEGIES_DIR", str(STRATEGIES))
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0


def test_add_list_show_disable_remove() -> None:
    assert "no bots yet" in runner.invoke(app, ["bots", "list"]).stdout
    added = runner.invoke(app, ADD)
    assert added.exit_code == 0, added.stderr
    listing = runner.invoke(app, ["bots", "list"]).stdout
    assert "alpha" in listing and "ema_rsi" in listing
    shown = runner.invoke(app, ["bots", "show", "alpha"]).stdout
    assert "take_profit_pct" in shown and "no orders yet" in shown
    assert runner.invoke(app, ["bots", "disable", "alpha"]).exit_code == 0
    assert " no " in runner.invoke(app, ["bots", "list"]).stdout
    assert runner.invoke(app, ["bots", "remove", "alpha"]).exit_code == 0
    assert "no bots yet" in runner.invoke(app, ["bots", "list"]).stdout


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (["--strategy", "missing"], "unknown strategy 'missing'"),
        (["--capital", "0"], "capital_per_trade: Input should be greater than 0"),
        (["--take-profit-pct", "-1"], "take_profit_pct"),
        (["--timeframe", "2w"], "unknown timeframe '2w'"),
        (["--mode", "live"], "needs the name of a credential set"),
        (["--confidence-threshold", "1.5"], "confidence_threshold"),
        (["--param", "rsi_entry_below=oops"], "strategy_parameters do not suit 'ema_rsi'"),
        (["--param", "no_such=1"], "no_such"),
        (["--param", "novalue"], "expected KEY=VALUE"),
    ],
)
def test_invalid_bot_is_one_line(change: list[str], fragment: str) -> None:
    args = list(ADD)
    option = change[0]
    if option in args:
        index = args.index(option)
        args[index : index + 2] = change
    else:
        args += change
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error:") and fragment in result.stderr
    assert "no bots yet" in runner.invoke(app, ["bots", "list"]).stdout


def test_unmigrated_database_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    result = runner.invoke(app, ["bots", "list"])
    assert result.exit_code == 1 and "tradepipe db upgrade" in result.stderr


def test_strategy_parameters_are_stored_and_a_bot_can_be_assigned_another_strategy() -> None:
    added = runner.invoke(
        app, [*ADD, "--param", "rsi_entry_below=35", "--param", "limit_offset_pct=0.1"]
    )
    assert added.exit_code == 0, added.stderr
    assert "rsi_entry_below" in runner.invoke(app, ["bots", "show", "alpha"]).stdout
    refused = runner.invoke(app, ["bots", "assign", "alpha", "lgbm_threshold"])
    assert refused.exit_code == 1  # ema_rsi's parameters do not suit lgbm_threshold
    assert "strategy_parameters do not suit 'lgbm_threshold'" in refused.stderr
    assert runner.invoke(app, ["bots", "assign", "alpha", "missing"]).exit_code == 1
    assert runner.invoke(app, ["bots", "assign", "nobody", "ema_rsi"]).exit_code == 1
    assigned = runner.invoke(app, ["bots", "assign", "alpha", "ema_rsi"])
    assert assigned.exit_code == 0 and "runs ema_rsi" in assigned.stdout
