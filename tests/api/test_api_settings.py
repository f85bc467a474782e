"""`tradepipe live run`'s API from the settings: address, token and the events queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from live.engine.run import api_app, api_options
from tests.engine.helpers import Aio, config_for, start_engine
from tradepipe.config import load_settings


def test_the_events_queue_size_and_token_come_from_the_settings(
    aio: Aio, database_url: str, strategies_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEPIPE_ENGINE_EVENTS_QUEUE_SIZE", "7")
    monkeypatch.setenv("TRADEPIPE_ENGINE_API_TOKEN", "token-from-the-environment")
    monkeypatch.setenv("TRADEPIPE_ENGINE_API_PORT", "8123")
    options = api_options(load_settings())
    assert (options.port, options.token, options.events_queue_size) == (
        8123,
        "token-from-the-environment",
        7,
    )

    async def scenario() -> int:
        running = await start_engine(config_for(database_url, strategies_dir))
        try:
            return int(api_app(running.engine, options).state.events.queue_size)
        finally:
            await running.engine.stop()

    assert aio.run(scenario()) == 7


def test_a_queue_size_below_one_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tradepipe.config import ConfigError

    monkeypatch.setenv("TRADEPIPE_ENGINE_EVENTS_QUEUE_SIZE", "0")
    with pytest.raises(ConfigError, match="engine_events_queue_size"):
        load_settings()
