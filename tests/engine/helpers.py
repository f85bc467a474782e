"""Helpers of the engine tests: strategy folders with the shipped strategies and small test
strategies, bots added through the real bot management code, fast engine settings, trade
walks, and a bounded asyncio runner (no test can hang)."""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from websockets.asyncio.client import ClientConnection, connect

from live.engine import Engine, EngineConfig, build_engine
from live.feeds import InMemoryFeed
from live.replay import ReplayMessage, ReplayServer, ReplaySource
from tests import support
from tradepipe.botconfig import parse_bot_config
from tradepipe.bots import NewBot, add_bot
from tradepipe.db import create_engine_for, session_scope
from tradepipe.domain import Side, Trade

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z, the synthetic replay's default start
BTC_CAPTURE = "binance_spot_btcusdt_ws_2024-08-08.txt.gz"

# Test strategies, written next to copies of the shipped ones.
STRATEGIES = {
    "always": """
        from tradepipe.strategy import Enter, Strategy, StrategyParameters

        class Always(Strategy[StrategyParameters]):
            def on_candle(self, context):
                return Enter(reason="always") if context.can_enter else None
    """,
    "always_limit": """
        from tradepipe.strategy import Enter, Strategy, StrategyParameters

        class AlwaysLimit(Strategy[StrategyParameters]):
            def on_candle(self, context):
                if not context.can_enter:
                    return None
                return Enter(limit_price=context.candle.close * 0.999, reason="limit")
    """,
    # Raises on the markets bots trade, not on the validation's synthetic SMOKEUSDT candles:
    # a bug the smoke run cannot see, so the bot has to be isolated at run time.
    "explode": """
        from tradepipe.strategy import Strategy, StrategyParameters

        class Explode(Strategy[StrategyParameters]):
            def on_candle(self, context):
                if context.candle.symbol != "SMOKEUSDT":
                    raise RuntimeError("boom at " + str(context.candle.start_ms))
    """,
    "counting": """
        from tradepipe.strategy import Enter, Strategy, StrategyParameters

        class Counting(Strategy[StrategyParameters]):
            def __init__(self, parameters):
                super().__init__(parameters)
                self.seen = 0

            def on_candle(self, context):
                self.seen += 1
                return Enter(reason=f"n={self.seen}") if context.can_enter else None

            def on_save(self):
                return {"seen": self.seen}

            def on_load(self, state):
                self.seen = int(state.get("seen", 0))
    """,
}

FAST = {
    "heartbeat_seconds": 0.2,
    "bot_reload_seconds": 0.2,
    "model_poll_seconds": 0.3,
    "tick_seconds": 0.05,
    "candle_close_grace_seconds": 0.5,
    "db_retry_initial_seconds": 0.05,
    "db_retry_max_seconds": 0.2,
    "db_busy_timeout_ms": 100,
    "broker_retry_initial_seconds": 0.05,
    "stop_timeout_seconds": 5.0,
    "rest_url": None,
    # Replays run the market hundreds of times faster than real time: seconds of REST
    # warm-up (ccxt's import alone takes one) would hold back minutes of market. Only the
    # warm-up test turns it on.
    "warmup_from_exchange": False,
}


class Aio(support.Aio):
    RUN_TIMEOUT = 30.0
    EVENTUALLY_TIMEOUT = 10.0


def write_strategies(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for shipped in ("ema_rsi.py", "lgbm_threshold.py"):
        shutil.copy(REPO / "strategies" / shipped, folder / shipped)
    for name, source in STRATEGIES.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return folder


def bot_config(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "capital_per_trade": 100.0,
        "take_profit_pct": 0.05,
        "stop_loss_pct": 0.05,
        "max_holding_seconds": 20.0,
        "maker_order_timeout_seconds": 10.0,
        "max_open_positions": 1,
    }
    values.update(changes)
    return values


def add_bots(url: str, strategies: Path, bots: Iterable[tuple[str, str]], **config: Any) -> None:
    """Add (name, strategy) bots on BTCUSDT 1s through tradepipe.bots (validated)."""
    timeframe = config.pop("timeframe", "1s")
    symbol = config.pop("symbol", "BTCUSDT")
    engine = create_engine_for(url)
    try:
        with session_scope(engine) as session:
            for name, strategy in bots:
                new = NewBot(
                    name, strategy, symbol, timeframe, parse_bot_config(bot_config(**config))
                )
                add_bot(session, new, strategies)
    finally:
        engine.dispose()


def query(url: str, sql: str, **params: Any) -> list[sa.Row[Any]]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(sql), params))
    finally:
        engine.dispose()


def execute(url: str, sql: str, **params: Any) -> None:
    engine = create_engine_for(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(sql), params)
    finally:
        engine.dispose()


def config_for(url: str, strategies: Path, **changes: Any) -> EngineConfig:
    values: dict[str, Any] = {"database_url": url, "strategies_dir": strategies, **FAST}
    values.update(changes)
    return EngineConfig(**values)


def walk(
    count: int,
    *,
    start_ms: int = START_MS,
    step_ms: int = 1_000,
    price: float = 100.0,
    moves: Iterable[float] | None = None,
    symbol: str = "BTCUSDT",
    first_id: int = 1,
) -> Iterator[Trade]:
    """`count` trades, one every `step_ms`, each moving the price by the next factor of
    `moves` (cycled; default a gentle zigzag that touches 0.05 % barriers)."""
    factors = list(moves or (1.0006, 0.9994, 0.9997, 1.0004))
    for index in range(count):
        price *= factors[index % len(factors)]
        side = Side.BUY if index % 2 else Side.SELL
        yield Trade(
            symbol, start_ms + index * step_ms, round(price, 6), 0.5, side, first_id + index
        )


@dataclass
class Running:
    engine: Engine
    feed: InMemoryFeed


async def start_engine(config: EngineConfig, **options: Any) -> Running:
    feed = InMemoryFeed("binance")
    engine = build_engine(config, feed=feed, **options)
    await asyncio.wait_for(engine.start(), 20)
    return Running(engine, feed)


async def push(running: Running, trades: Iterable[Trade], *, settle: bool = True) -> None:
    """Push trades one by one; with `settle`, each waits until the orders the previous ones
    caused have reached the broker (as when trades are seconds apart, not microseconds)."""
    outbox = running.engine.core.outbox
    for trade in trades:
        running.feed.push(trade)
        await asyncio.sleep(0)
        if settle and outbox.pending:
            await outbox.idle(2.0)


class MarketTimes:
    """A replay source that keeps its own trade times when paced. The synthetic source
    moves them onto the wall clock at speed > 0; kept, the market clock runs `speed` times
    faster than the wall, as in a backtest, so minutes of market pass in a second."""

    def __init__(self, inner: ReplaySource) -> None:
        self.inner = inner

    @property
    def description(self) -> str:
        return self.inner.description

    @property
    def symbols(self) -> frozenset[str]:
        return self.inner.symbols

    def messages(self, wall_start_ns: int, speed: float) -> Iterator[ReplayMessage]:
        return self.inner.messages(wall_start_ns, 0.0)


async def champion_loaded(
    aio: Aio, engine: Engine, version: str, *bots: str, timeout: float = 40
) -> None:
    """Until each of `bots` trades on model `version` (the first model check waits for the
    check process to start: hence the long default)."""
    await aio.eventually(
        lambda: all(
            getattr(engine.bot_status(name), "model_version", None) == version for name in bots
        ),
        "the champion to load",
        timeout,
    )


@asynccontextmanager
async def market_started(
    replay: ReplayServer, stream: str = "btcusdt@trade"
) -> AsyncIterator[None]:
    """The market of a replay that waits for two subscribers (`wait_for_subscribers=2`),
    started by a second listener once the engine is ready, so how long the engine took to
    load its models does not decide which trades its bots see; the listener's copy is
    read and dropped until the body ends."""
    async with connect(
        f"{replay.url}/stream?streams={stream}", proxy=None, close_timeout=1
    ) as starter:
        reading = asyncio.create_task(_drain(starter))
        try:
            yield
        finally:
            reading.cancel()


async def replay_to_the_end(aio: Aio, replay: ReplayServer, timeout: float = 40) -> None:
    """Start the replay's market (`market_started`) and wait until it has sent everything."""
    async with market_started(replay):
        await aio.eventually(replay.finished.is_set, "the replay to finish", timeout)


async def _drain(connection: ClientConnection) -> None:
    async for _ in connection:
        pass
