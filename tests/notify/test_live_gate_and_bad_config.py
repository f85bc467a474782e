"""The engine's side of the rules: a live bot is refused while `allow_live_trading` is off
(the bot in error, the operator told through its notifiers); and notifier settings that
cannot work stop with one clear message naming the notifier and what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from live.notify import NotifierConfigError, build_hub
from tests.engine.helpers import Aio, bot_config, config_for, query, start_engine
from tests.notify.harness import WEBHOOK_KEY, hub_for, servers, set_secrets
from tradepipe.botconfig import parse_bot_config
from tradepipe.bots import NewBot, add_bot
from tradepipe.config import ConfigError, load_settings
from tradepipe.db import create_engine_for, session_scope
from tradepipe.enums import BotMode


def add_live_bot(database_url: str, strategies_dir: Path) -> None:
    """A live bot, created while live trading was allowed (the setting is off since)."""
    config = bot_config(credentials="BINANCE_LIVE", notifiers=["hook"], notify_events=["errors"])
    new = NewBot(
        "real", "always", "BTCUSDT", "1s", parse_bot_config(config),
        mode=BotMode.LIVE, confirmed_mode=BotMode.LIVE,
    )  # fmt: skip
    engine = create_engine_for(database_url)
    try:
        with session_scope(engine) as session:
            add_bot(session, new, strategies_dir, allow_live_trading=True)
    finally:
        engine.dispose()


def test_engine_refuses_a_live_bot_without_the_second_confirmation(
    database_url: str, strategies_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch)
    add_live_bot(database_url, strategies_dir)
    telegram, webhook = servers()

    async def scenario() -> None:
        async with telegram, webhook:
            running = await start_engine(
                config_for(database_url, strategies_dir), notifications=hub_for(telegram, webhook)
            )
            engine = running.engine
            try:
                await Aio.eventually(lambda: webhook.received, "the refusal notified")
                assert "real" not in engine.core.bots  # never traded, never given a venue
            finally:
                await engine.stop()

    Aio.run(scenario())
    [refusal] = webhook.received
    assert refusal["category"] == "errors" and refusal["bot"] == "real"
    assert "live trading is switched off" in refusal["text"]
    assert "TRADEPIPE_ALLOW_LIVE_TRADING" in refusal["text"]
    [row] = query(database_url, "SELECT status, last_error FROM bots WHERE name = 'real'")
    assert row.status == "error" and "live trading is switched off" in row.last_error
    assert WEBHOOK_KEY not in json.dumps(refusal)


@pytest.mark.parametrize(
    ("notifiers", "message"),
    [
        ('{"tg": {"type": "telegram", "token_secret": "T"}}',
         "notifiers.tg.telegram.chat_id_secret (TRADEPIPE_NOTIFIERS): Field required"),
        ('{"tg": {"type": "pager"}}', "notifiers.tg (TRADEPIPE_NOTIFIERS): Input tag 'pager'"),
        ('{"hook": {"type": "webhook", "url": "ftp://x"}}', "expected an http:// or https://"),
        ('{"Bad Name": {"type": "webhook", "url": "http://x"}}', "notifiers.Bad Name.[key]"),
        ('{"hook": {"type": "webhook", "url": "http://x", "signing_secret": "s3cr3t-v4lue!"}}',
         "signing_secret must be the NAME of a secret"),
        ('{"hook": {"type": "webhook", "url": "http://x", "retry_initial_seconds": 9, '
         '"retry_max_seconds": 1}}', "retry_initial_seconds must not exceed retry_max_seconds"),
        ("{not json", "notifiers (TRADEPIPE_NOTIFIERS): not valid JSON"),
        ('{"hook": {"type": "webhook"}}', "give the webhook's url or url_secret"),
        ('{"hook": {"type": "webhook", "url": "http://x", "url_secret": "HOOK_URL"}}',
         "give the webhook's url or url_secret"),
    ],
)  # fmt: skip
def test_invalid_notifier_settings_name_the_problem(
    monkeypatch: pytest.MonkeyPatch, notifiers: str, message: str
) -> None:
    monkeypatch.setenv("TRADEPIPE_NOTIFIERS", notifiers)
    with pytest.raises((ConfigError, ValueError)) as caught:
        load_settings()
    assert message in str(caught.value)
    assert "s3cr3t-v4lue!" not in str(caught.value)


def test_a_missing_notifier_secret_stops_the_engine_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifiers = {"tg": {"type": "telegram", "token_secret": "TG_TOKEN", "chat_id_secret": "TG"}}
    monkeypatch.setenv("TRADEPIPE_NOTIFIERS", json.dumps(notifiers))
    with pytest.raises(NotifierConfigError, match="notifier tg: secret TG_TOKEN not found"):
        build_hub(load_settings())
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text("TG_TOKEN=123:abc-def-ghi\nTG=42\n")
    secrets_file.chmod(0o644)
    monkeypatch.setenv("TRADEPIPE_SECRETS_FILE", str(secrets_file))
    with pytest.raises(NotifierConfigError, match=r"notifier tg: secrets file .* run `chmod 600"):
        build_hub(load_settings())
    secrets_file.chmod(0o600)
    assert set(build_hub(load_settings()).deliveries) == {"tg"}
    monkeypatch.delenv("TRADEPIPE_SECRETS_FILE")
    result = CliRunner().invoke(app, ["live", "run"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: notifier tg: secret TG_TOKEN not found")
    assert "Traceback" not in result.stderr
