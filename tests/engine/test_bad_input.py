"""Bad market data never stops the engine: malformed messages on the wire are counted and
skipped, a bot on a symbol the exchange does not list is in error naming the symbol (it
would warm up forever on a silent stream) while the other bots trade on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from live.engine import BotRunState, EngineState, build_engine
from live.feeds import BinanceFeed
from live.replay import ReplayMessage, ReplayServer, SyntheticSource
from tests.engine.helpers import (
    START_MS,
    Aio,
    MarketTimes,
    add_bots,
    config_for,
    query,
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
            engine = build_engine(
                config, feed=BinanceFeed(feed_config(replay.url, silence_seconds=0.5))
            )
            await engine.start()
            try:
                await aio.eventually(replay.finished.is_set, "the replay to finish", 20)
                metrics = engine.feed.metrics()
                assert metrics.parse_errors == WithGarbage.injected > 0
                status = engine.status()
                assert status.state is EngineState.RUNNING
                good = status.bot("good")
                assert good is not None and good.entries > 0
                assert good.state is BotRunState.RUNNING
                assert status.bot("ghost") is None  # refused, never subscribed
                assert engine.feed.status().silent == ()
                await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
            finally:
                await engine.stop()

    aio.run(scenario())
    [ghost] = query(database_url, "SELECT status, last_error FROM bots WHERE name = 'ghost'")
    assert ghost.status == "error"
    assert ghost.last_error == "bot ghost refused: symbol NOPEUSDT is not listed on binance"
