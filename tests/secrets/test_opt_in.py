"""Testnet and live trading are opted into per bot (a credential set by name and the mode
repeated), live also platform-wide (`allow_live_trading`); bot configs hold secret names,
never values; notifiers a bot names must be configured. Through `tradepipe bots add`, as an
operator meets these rules, and through the kernel's `add_bot`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from app.cli import app
from tests.support import venue_rest
from tradepipe.botconfig import BotConfigError, parse_bot_config
from tradepipe.bots import BotError, NewBot, add_bot, check_mode_opt_in
from tradepipe.db import create_engine_for, get_bot, session_scope, upgrade_database
from tradepipe.enums import BotMode

runner = CliRunner()
STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
ADD = ["bots", "add", "alpha", "--strategy", "ema_rsi", "--symbol", "BTCUSDT", "--timeframe",
       "1m", "--capital", "100", "--take-profit-pct", "1", "--stop-loss-pct", "1",
       "--max-holding-seconds", "3600"]  # fmt: skip
PASTED_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
NOTIFIERS = {"ops": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}}


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'bots.db'}"
    upgrade_database(url)
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", url)
    monkeypatch.setenv("TRADEPIPE_STRATEGIES_DIR", str(STRATEGIES))
    monkeypatch.setenv("TRADEPIPE_NOTIFIERS", json.dumps(NOTIFIERS))
    with venue_rest(("BTCUSDT",)) as venue:  # `bots add` asks it whether BTCUSDT exists
        monkeypatch.setenv("TRADEPIPE_FEED_REST_URL", venue)
        yield url


def config(**changes: object) -> dict[str, object]:
    return {
        "capital_per_trade": 100,
        "take_profit_pct": 1,
        "stop_loss_pct": 1,
        "max_holding_seconds": 60,
        "maker_order_timeout_seconds": 30,
        **changes,
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--mode", "testnet"], "needs the name of a credential set (--credentials NAME)"),
        (["--mode", "testnet", "--credentials", "BINANCE_TESTNET"],
         "places real orders on the exchange testnet: confirm with --confirm-mode testnet"),
        (["--mode", "testnet", "--credentials", "BINANCE_TESTNET", "--confirm-mode", "live"],
         "confirm with --confirm-mode testnet"),
        (["--mode", "live", "--credentials", "BINANCE_LIVE", "--confirm-mode", "live"],
         "live trading is switched off: set allow_live_trading (TRADEPIPE_ALLOW_LIVE_TRADING"),
        (["--mode", "testnet", "--credentials", PASTED_KEY, "--confirm-mode", "testnet"],
         "credentials must be the NAME of a secret"),
        (["--notify", "pager"], "unknown notifier(s) pager: configured notifiers are ops"),
        (["--notify", "ops", "--notify-events", "entries,trades"], "notify_events.1"),
        (["--mode", "sandbox"], "unknown mode 'sandbox'"),
    ],
)  # fmt: skip
def test_refusals_are_one_line_and_never_echo_a_value(
    database: str, options: list[str], message: str
) -> None:
    result = runner.invoke(app, [*ADD, *options])
    assert result.exit_code == 1, result.stdout
    assert result.stderr.startswith("error:") and message in result.stderr, result.stderr
    assert PASTED_KEY not in result.stderr + result.stdout
    assert "no bots yet" in runner.invoke(app, ["bots", "list"]).stdout


def test_opted_in_bots_store_names_only(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    testnet = [*ADD, "--mode", "testnet", "--credentials", "BINANCE_TESTNET",
               "--confirm-mode", "testnet", "--notify", "ops",
               "--notify-events", "errors,exits"]  # fmt: skip
    result = runner.invoke(app, testnet)
    assert result.exit_code == 0, result.stderr
    monkeypatch.setenv("TRADEPIPE_ALLOW_LIVE_TRADING", "true")
    live = [*ADD[:2], "beta", *ADD[3:], "--mode", "live", "--credentials", "BINANCE_LIVE",
            "--confirm-mode", "live"]  # fmt: skip
    result = runner.invoke(app, live)
    assert result.exit_code == 0, result.stderr
    engine = create_engine_for(database)
    try:
        with session_scope(engine) as session:
            alpha, beta = get_bot(session, "alpha"), get_bot(session, "beta")
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT name, config FROM bots")).all()
            stored: dict[str, object] = {row[0]: row[1] for row in rows}
    finally:
        engine.dispose()
    assert alpha is not None and alpha.mode is BotMode.TESTNET and alpha.config is not None
    assert alpha.config.credentials == "BINANCE_TESTNET"
    assert alpha.config.notifiers == ("ops",)
    assert [c.value for c in alpha.config.notify_events] == ["exits", "errors"]
    assert beta is not None and beta.mode is BotMode.LIVE
    raw = stored["alpha"]  # the JSON column as the driver returns it: parsed or text
    alpha_json = raw if isinstance(raw, dict) else json.loads(str(raw))
    assert alpha_json["credentials"] == "BINANCE_TESTNET"
    shown = runner.invoke(app, ["bots", "show", "alpha"]).stdout
    assert "BINANCE_TESTNET" in shown and "testnet" in shown


def test_kernel_checks_without_the_cli(database: str) -> None:
    named = parse_bot_config(config(credentials="BINANCE_TESTNET"))
    check_mode_opt_in(BotMode.PAPER, parse_bot_config(config()), confirmed_mode=None,
                      allow_live_trading=False)  # fmt: skip
    check_mode_opt_in(BotMode.LIVE, named, confirmed_mode=BotMode.LIVE, allow_live_trading=True)
    with pytest.raises(BotError, match="live trading is switched off"):
        check_mode_opt_in(BotMode.LIVE, named, confirmed_mode=BotMode.LIVE,
                          allow_live_trading=False)  # fmt: skip
    engine = create_engine_for(database)
    try:
        with session_scope(engine) as session:
            new = NewBot("gamma", "ema_rsi", "BTCUSDT", "1m", named, mode=BotMode.TESTNET)
            with pytest.raises(BotError, match="confirm with --confirm-mode testnet"):
                add_bot(session, new, STRATEGIES)
            ghost = NewBot("delta", "ema_rsi", "BTCUSDT", "1m",
                           parse_bot_config(config(notifiers=["ghost"])))  # fmt: skip
            with pytest.raises(BotError, match="unknown notifier"):
                add_bot(session, ghost, STRATEGIES, known_notifiers=["ops"])
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "value",
    [PASTED_KEY, "123456789:AAHfakeTelegramBotToken-abcdefgh", "binance_testnet", "sk live key"],
)
def test_a_value_where_a_name_belongs_is_refused_unechoed(value: str) -> None:
    with pytest.raises(BotConfigError, match="must be the NAME of a secret") as caught:
        parse_bot_config(config(credentials=value))
    assert value not in str(caught.value)
