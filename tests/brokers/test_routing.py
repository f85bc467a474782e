"""Each bot's orders at its own venue: paper and testnet bots side by side in one engine,
and a venue that cannot be connected refused with what to set."""

from __future__ import annotations

from pathlib import Path

import pytest

from live.brokers import Venue, VenueError
from live.engine.venues import connect_venue
from live.replay.exchange import ExchangeSimulator
from tests.brokers.helpers import API_KEY, API_SECRET, account
from tests.brokers.test_engine_testnet import CREDENTIALS, POLL_SECONDS, Market, add_testnet_bot
from tests.engine.helpers import Aio, add_bots, config_for, query, start_engine
from tradepipe.enums import BotMode


def test_paper_and_testnet_bots_trade_side_by_side_each_at_its_venue(
    aio: Aio, database_url: str, strategies_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"{CREDENTIALS}_API_KEY", API_KEY)
    monkeypatch.setenv(f"{CREDENTIALS}_API_SECRET", API_SECRET)
    add_testnet_bot(database_url, strategies_dir, "tn")
    add_bots(database_url, strategies_dir, [("pp", "always")])

    async def scenario() -> None:
        async with ExchangeSimulator(account(usdt=10_000.0), {API_KEY: API_SECRET}) as exchange:
            config = config_for(
                database_url,
                strategies_dir,
                exchange_testnet_url=exchange.url,
                exchange_poll_seconds=POLL_SECONDS,
                exchange_rate_limit_ms=0.0,
            )
            running = await start_engine(config)
            try:
                await Market(exchange).play(running, 40, aio)
                await aio.eventually(
                    lambda: all(running.engine.core.bots[b].entries for b in ("tn", "pp")),
                    "both bots to enter",
                )
            finally:
                await running.engine.stop()
        sent = {r.params["newClientOrderId"] for r in exchange.placements()}
        assert sent and all(order_id.startswith("tn-") for order_id in sent)
        fills = query(
            database_url,
            "SELECT b.name AS bot, f.exchange_fill_id FROM fills f "
            "JOIN orders o ON o.id = f.order_id JOIN bots b ON b.id = o.bot_id",
        )
        by_bot = {row.bot: row.exchange_fill_id for row in fills}
        assert by_bot["pp"].startswith("paper:") and by_bot["tn"].isdigit()

    aio.run(scenario(), timeout=60)


def test_a_venue_that_cannot_be_used_says_what_to_set(
    database_url: str, strategies_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_for(database_url, strategies_dir)
    with pytest.raises(VenueError, match="live trading is switched off"):
        connect_venue(config, Venue(BotMode.LIVE, "BINANCE_LIVE"))
    with pytest.raises(VenueError, match="secret NOPE_API_KEY not found"):
        connect_venue(config, Venue(BotMode.TESTNET, "NOPE"))
    monkeypatch.setenv("REAL_API_KEY", API_KEY)
    monkeypatch.setenv("REAL_API_SECRET", API_SECRET)
    live = config.with_changes(allow_live_trading=True)
    broker = connect_venue(live, Venue(BotMode.LIVE, "REAL"))
    assert broker.name == "live:REAL"
    assert broker.client.urls["api"]["private"] == "https://api.binance.com/api/v3"
    testnet = connect_venue(config, Venue(BotMode.TESTNET, "REAL"))
    assert testnet.client.urls["api"]["private"] == "https://testnet.binance.vision/api/v3"
