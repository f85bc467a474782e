"""Bad market data never stops the engine: malformed messages on the wire are counted and
skipped, a bot on a symbol the exchange does not list waits (the feed reports the symbol
silent, /health is degraded naming it) while the other bots trade on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from live.engine import BotRunState, Engine, EngineState
from live.feeds import BinanceFeed
from live.replay import ReplayMessage, ReplayServer, SyntheticSource
from tests.engine.helpers import (
    START_MS,
    Aio,
    MarketTimes,
    add_bots,
    config_for,
)
from tests.support import feed_config

MALFORMED = (
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","p":"oops"}}',
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":',
    '{"stream":"btcusdt@trade","data":[1,2,3]}',
)


class WithGarbage(MarketTimes):
    """The synthetic market with a malformed message after every 10th trade."""

    injected = 0

    def messages(self, wall_start_ns: int, speed: float) -> Iterator[ReplayMessage]:
        for index, message in enumerate(super().messages(wall_start_ns, speed)):
            yield message
            if index % 10 == 9:
                raw = MALFORMED[(index // 10) % len(MALFORMED)]
                WithGarbage.injected += 1
                yield replace(message, raw=raw, trade=None)


def test_malformed_messages_and_an_unknown_symbol_do_not_stop_trading(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("good", "always")])
    add_bots(database_url, strategies_dir, [("ghost", "always")], symbol="NOPEUSDT")
    source = WithGarbage(SyntheticSource(["BTCUSDT"], start_ms=START_MS, end_ms=START_MS + 900_000))

    async def scenario() -> None:
        async with ReplayServer(source, speed=400) as replay:
            config = config_for(database_url, strategies_dir, rest_url=replay.rest_url)
            engine = Engine(config, feed=BinanceFeed(feed_config(replay.url, silence_seconds=0.5)))
            await engine.start()
            try:
                await aio.eventually(replay.finished.is_set, "the replay to finish", 20)
                await aio.eventually(
                    lambda: engine.feed.status().silent == ("NOPEUSDT",), "silence noticed", 5
                )
                metrics = engine.feed.metrics()
                assert metrics.parse_errors == WithGarbage.injected > 0
                status = engine.status()
                # the silent symbol degrades health by name; the good bot trades on
                assert status.state is EngineState.DEGRADED and not status.healthy
                assert status.degraded_reasons == (
                    "feed: NOPEUSDT silent (no trades while connected)",
                )
                assert engine.core.trading
                good, ghost = status.bot("good"), status.bot("ghost")
                assert good is not None and good.entries > 0
                assert ghost is not None and ghost.state is BotRunState.WARMING_UP
                assert ghost.last_candle_ms is None
            finally:
                await engine.stop()

    aio.run(scenario())
