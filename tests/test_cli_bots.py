"""`tradepipe bots` end to end on a migrated SQLite database."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from tests.support import venue_rest

runner = CliRunner()
STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"
ADD = ["bots", "add", "alpha", "--strategy", "ema_rsi", "--symbol", "BTCUSDT", "--timeframe",
       "1m", "--capital", "100", "--take-profit-pct", "1", "--stop-loss-pct", "1",
       "--max-holding-seconds", "3600"]  # fmt: skip


@pytest.fixture(autouse=True)
def migrated(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database, and a venue on loopback whose exchangeInfo lists BTCUSDT and
    ETHUSDT (`bots add` asks it whether the symbol exists)."""
    monkeypatch.setenv("TRADEPIPE_STRATEGIES_DIR", str(STRATEGIES))
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    with venue_rest(("BTCUSDT", "ETHUSDT")) as url:
        monkeypatch.setenv("TRADEPIPE_FEED_REST_URL", url)
        yield url


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
        # Numbers must be finite and within the documented bounds (README, bots section).
        (["--max-holding-seconds", "inf"], "max_holding_seconds: Input should be a finite"),
        (["--max-holding-seconds", "nan"], "max_holding_seconds: Input should be a finite"),
        (["--max-holding-seconds", "1e300"], "max_holding_seconds: Input should be less than"),
        (["--take-profit-pct", "1e308"], "take_profit_pct: Input should be less than"),
        (["--stop-loss-pct", "200"], "stop_loss_pct: Input should be less than 100"),
        (["--stop-loss-pct", "100"], "stop_loss_pct: Input should be less than 100"),
        (["--capital", "1e300"], "capital_per_trade: Input should be less than"),
        (["--capital", "-inf"], "capital_per_trade: Input should be a finite"),
        (["--max-open-positions", "1000000000"], "max_open_positions: Input should be less"),
        (["--maker-timeout-seconds", "inf"], "maker_order_timeout_seconds: Input should be a"),
        (["--param", "rsi_entry_below=NaN"], "strategy_parameters.rsi_entry_below: numbers"),
        (["--trailing-stop-pct", "100"], "trailing_stop_pct: Input should be less than 100"),
        (["--trailing-stop-pct", "-1"], "trailing_stop_pct: Input should be greater than 0"),
        (["--trailing-stop-pct", "nan"], "trailing_stop_pct: Input should be a finite"),
        # The venue's word on the symbol, and only exchanges the engine trades.
        (["--symbol", "NOPEUSDT"], "symbol NOPEUSDT is not listed on binance"),
        (["--exchange", "kraken"], "exchange 'kraken' is not supported: the engine trades"),
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


def test_bounds_are_inclusive_where_documented() -> None:
    args = list(ADD)
    for option, value in (("--max-holding-seconds", "31622400"), ("--take-profit-pct", "1000"),
                          ("--capital", "1e9"), ("--stop-loss-pct", "99.9")):  # fmt: skip
        index = args.index(option)
        args[index + 1] = value
    added = runner.invoke(app, [*args, "--max-open-positions", "1000", "--symbol", "ETHUSDT"])
    assert added.exit_code == 0, added.stderr
    assert "on ETHUSDT" in added.stdout


def test_unreachable_venue_refuses_unless_the_check_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("TRADEPIPE_FEED_REST_URL", f"http://127.0.0.1:{port}")
    refused = runner.invoke(app, ADD)
    assert refused.exit_code == 1
    assert "cannot ask binance whether it lists BTCUSDT" in refused.stderr
    assert "--skip-symbol-check" in refused.stderr
    assert "no bots yet" in runner.invoke(app, ["bots", "list"]).stdout
    added = runner.invoke(app, [*ADD, "--skip-symbol-check"])
    assert added.exit_code == 0, added.stderr
    # skipping the venue's word skips nothing else
    other = [*ADD, "--skip-symbol-check", "--exchange", "coinbase"]
    other[2] = "beta"
    assert "not supported" in runner.invoke(app, other).stderr


def test_symbol_is_stored_as_the_venue_spells_it() -> None:
    added = runner.invoke(app, [*ADD[:6], "eth/usdt", *ADD[7:]])
    assert added.exit_code == 0, added.stderr
    assert "on ETHUSDT" in added.stdout


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


def test_set_changes_the_config_validated_and_recorded() -> None:
    assert runner.invoke(app, ADD).exit_code == 0
    changed = runner.invoke(
        app,
        ["bots", "set", "alpha", "--take-profit-pct", "1.2", "--max-open-positions", "2",
         "--param", "rsi_entry_below=25", "--json"],
    )  # fmt: skip
    assert changed.exit_code == 0, changed.stderr
    done = json.loads(changed.stdout)
    assert done["new"] == {
        "take_profit_pct": 1.2,
        "max_open_positions": 2,
        "strategy_parameters": {"rsi_entry_below": 25},
    }
    assert done["old"]["take_profit_pct"] == 1.0 and done["old"]["max_open_positions"] == 1
    assert done["by"].startswith("cli")
    shown = runner.invoke(app, ["bots", "show", "alpha"]).stdout
    assert "configuration changes" in shown and "take_profit_pct" in shown and "1.2" in shown

    same = runner.invoke(app, ["bots", "set", "alpha", "--take-profit-pct", "1.2"])
    assert same.exit_code == 0 and "nothing changed" in same.stdout
    for args, fragment in (
        (["--stop-loss-pct", "200"], "stop_loss_pct: Input should be less than 100"),
        (["--capital", "inf"], "capital_per_trade: Input should be a finite"),
        (["--param", "rsi_entry_below=oops"], "strategy_parameters do not suit 'ema_rsi'"),
        (["--notify", "nobody"], "unknown notifier(s) nobody"),
        ([], "nothing to set"),
    ):
        refused = runner.invoke(app, ["bots", "set", "alpha", *args])
        assert refused.exit_code != 0 and fragment in refused.stderr, (args, refused.stderr)
    assert (
        "no bot called 'ghost'"
        in runner.invoke(app, ["bots", "set", "ghost", "--capital", "5"]).stderr
    )
    # nothing of the refused changes was written
    again = json.loads(
        runner.invoke(app, ["bots", "set", "alpha", "--capital", "100", "--json"]).stdout
    )
    assert again["new"] == {} and again["old"] == {}


def test_a_trailing_stop_is_set_and_removed_like_any_field() -> None:
    added = runner.invoke(app, [*ADD, "--trailing-stop-pct", "0.5"])
    assert added.exit_code == 0, added.stderr
    changed = runner.invoke(app, ["bots", "set", "alpha", "--trailing-stop-pct", "1.5", "--json"])
    assert json.loads(changed.stdout)["new"] == {"trailing_stop_pct": 1.5}
    removed = runner.invoke(app, ["bots", "set", "alpha", "--trailing-stop-pct", "0", "--json"])
    done = json.loads(removed.stdout)
    assert done["old"] == {"trailing_stop_pct": 1.5} and done["new"] == {"trailing_stop_pct": None}


def test_risk_limits_are_set_at_add_changed_by_set_and_removed_with_zero() -> None:
    added = runner.invoke(app, [*ADD, "--daily-loss-limit", "50", "--max-drawdown-pct", "20"])
    assert added.exit_code == 0, added.stderr

    changed = runner.invoke(
        app,
        ["bots", "set", "alpha", "--daily-loss-limit", "0", "--max-symbol-exposure", "500",
         "--json"],
    )  # fmt: skip
    assert changed.exit_code == 0, changed.stderr
    done = json.loads(changed.stdout)
    assert done["old"] == {"daily_loss_limit": 50.0, "max_symbol_exposure": None}
    assert done["new"] == {"daily_loss_limit": None, "max_symbol_exposure": 500.0}
    refused = runner.invoke(app, ["bots", "set", "alpha", "--max-drawdown-pct", "101"])
    assert refused.exit_code != 0
    assert "max_drawdown_pct: Input should be less than or equal to 100" in refused.stderr
    assert "max_drawdown_pct" in runner.invoke(app, ["bots", "show", "alpha"]).stdout
