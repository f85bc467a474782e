"""Entry points: `serve_replay` for asyncio callers, `run_replay` for the command line.

`tradepipe feed replay --source synthetic|PATH --speed X --port P [--exchange-port E]` calls
`run_replay`,
which serves until SIGINT or SIGTERM and then closes every connection before returning 0.
An engine connects to `ws://HOST:PORT` exactly as to `wss://stream.binance.com:9443`, and
backfills from `http://HOST:REST_PORT` as from `https://api.binance.com`. With an exchange
port, testnet bots trade at `http://HOST:E` (`exchange_testnet_url`) against the same market.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from live.replay.server import ReplayServer

if TYPE_CHECKING:
    from live.replay.exchange import ExchangeSimulator
from live.replay.sources import CaptureSource, ReplaySource, SyntheticSource

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExchangeOptions:
    """Serve the exchange simulator (live/replay/exchange) beside the feed, matching orders
    against the trades the feed publishes: one account under `api_key`/`api_secret`, funded
    with `balance` of each quote asset."""

    port: int
    api_key: str
    api_secret: str
    balance: float = 10_000.0

    def simulator(self, host: str, symbols: Sequence[str]) -> ExchangeSimulator:
        from live.replay.exchange import ExchangeSimulator, MarketRules, SimulatedAccount

        account = SimulatedAccount({symbol: MarketRules(symbol) for symbol in symbols})
        for rules in account.markets.values():
            if rules.quote not in account.balances:
                account.deposit(rules.quote, self.balance)
        return ExchangeSimulator(
            account, {self.api_key: self.api_secret}, host=host, port=self.port
        )


SYNTHETIC = "synthetic"


def make_source(
    source: str | Path,
    *,
    symbols: Sequence[str] = ("BTCUSDT",),
    seed: int = 7,
    loop: bool = False,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> ReplaySource:
    """ "synthetic" -> the synthetic market of `symbols`; anything else is a capture path."""
    if str(source) == SYNTHETIC:
        return SyntheticSource(symbols, seed=seed, start_ms=start_ms, end_ms=end_ms)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(
            f"replay source {str(source)!r} is neither 'synthetic' nor an existing capture file"
        )
    return CaptureSource(path, loop=loop)


async def serve_replay(
    source: str | Path | ReplaySource,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    rest_port: int | None = 0,
    speed: float = 1.0,
    symbols: Sequence[str] = ("BTCUSDT",),
    seed: int = 7,
    loop: bool = False,
    start_ms: int | None = None,
    end_ms: int | None = None,
    wait_for_subscribers: int = 1,
    on_ready: Callable[[ReplayServer], None] | None = None,
    exchange: ExchangeOptions | None = None,
    on_exchange: Callable[[ExchangeSimulator], None] | None = None,
) -> None:
    """Serve a replay until cancelled. `source` is "synthetic", a capture path, or a
    ready `ReplaySource` (then the source options are ignored). Port 0 binds a free port:
    `on_ready` receives the started server, whose `url`/`rest_url` name the ports (tests
    can also use `ReplayServer` directly as an async context manager)."""
    replay = (
        make_source(source, symbols=symbols, seed=seed, loop=loop, start_ms=start_ms, end_ms=end_ms)
        if isinstance(source, str | Path)
        else source
    )
    simulator = None if exchange is None else exchange.simulator(host, sorted(replay.symbols))
    server = ReplayServer(
        replay,
        host=host,
        port=port,
        rest_port=rest_port,
        speed=speed,
        wait_for_subscribers=wait_for_subscribers,
        on_publish=None if simulator is None else simulator.on_message,
    )
    if simulator is not None:
        await simulator.start()
    try:
        await server.start()
        if on_ready is not None:
            on_ready(server)
        if simulator is not None and on_exchange is not None:
            on_exchange(simulator)
        await asyncio.Event().wait()  # until cancelled
    finally:
        await server.stop()
        if simulator is not None:
            await simulator.stop()


def run_replay(
    source: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    rest_port: int | None = 0,
    speed: float = 1.0,
    symbols: Sequence[str] = ("BTCUSDT",),
    seed: int = 7,
    loop: bool = False,
    start_ms: int | None = None,
    end_ms: int | None = None,
    announce: Callable[[str], None] = print,
    exchange: ExchangeOptions | None = None,
) -> int:
    """Serve a replay in the foreground until SIGINT/SIGTERM; returns the exit code.

    Bad input (a missing capture file, a negative speed) raises ValueError or
    FileNotFoundError with a message naming it, before anything binds.
    """
    if speed < 0:
        raise ValueError(f"--speed must be >= 0 (0: as fast as possible), got {speed}")
    replay = make_source(
        source, symbols=symbols, seed=seed, loop=loop, start_ms=start_ms, end_ms=end_ms
    )

    def ready(server: ReplayServer) -> None:
        pace = "as fast as possible" if speed == 0 else f"at {speed:g}x real time"
        rest = f", REST {server.rest_url}" if server.rest_url else ""
        announce(f"replaying {server.source.description} {pace} on {server.url}{rest}")

    async def main() -> None:
        task = asyncio.create_task(
            serve_replay(
                replay,
                host=host,
                port=port,
                rest_port=rest_port,
                speed=speed,
                on_ready=ready,
                exchange=exchange,
                on_exchange=lambda sim: announce(
                    f"exchange simulator (Binance spot REST) on {sim.url}"
                ),
            )
        )
        loop_ = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop_.add_signal_handler(signum, task.cancel)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop_.remove_signal_handler(signum)

    asyncio.run(main())
    announce("replay stopped")
    return 0
