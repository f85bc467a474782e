"""Test helpers shared by several test folders (imported as `tests.support`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gzip
import inspect
import json
import math
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from live.feeds import BinanceFeedConfig
from tradepipe.db import mask_url
from tradepipe.retries import Backoff

T = TypeVar("T")


class Aio:
    """asyncio for tests without pytest-asyncio: every wait is bounded, so none can hang.
    Subclasses set their folder's default timeouts."""

    RUN_TIMEOUT: ClassVar[float] = 20.0
    EVENTUALLY_TIMEOUT: ClassVar[float] = 5.0

    @classmethod
    def run(cls, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run one test coroutine; a hang fails the test after `timeout` seconds."""

        async def bounded() -> T:
            return await asyncio.wait_for(coroutine, timeout or cls.RUN_TIMEOUT)

        return asyncio.run(bounded())

    @classmethod
    async def eventually(
        cls,
        condition: Callable[[], object],
        what: str | Callable[[], str],
        timeout: float | None = None,
        interval: float = 0.005,
    ) -> Any:
        """Poll until `condition()` (a value or an awaitable of one) is truthy and return it;
        fail the test naming `what` (text, or a function giving it then) after `timeout`."""
        limit = timeout or cls.EVENTUALLY_TIMEOUT

        async def poll() -> object:
            while True:
                found = condition()
                if inspect.isawaitable(found):
                    found = await found
                if found:
                    return found
                await asyncio.sleep(interval)

        try:
            return await asyncio.wait_for(poll(), limit)
        except TimeoutError:
            pytest.fail(f"timed out after {limit} s waiting for {_described(what)}")

    @classmethod
    async def eventually_in_thread(
        cls,
        condition: Callable[[], T],
        what: str,
        log: Path,
        timeout: float,
        interval: float = 0.1,
    ) -> T:
        """`eventually` for a blocking condition (a database query, a process check), run
        in a thread off the event loop; a timeout quotes the (engine's) `log`."""
        found: T = await cls.eventually(
            lambda: asyncio.to_thread(condition),
            lambda: f"{what}; engine log:\n{log.read_text(errors='replace')}",
            timeout,
            interval,
        )
        return found

    @staticmethod
    async def within(awaitable: Awaitable[T], timeout: float = 5.0) -> T:
        return await asyncio.wait_for(awaitable, timeout)

    @staticmethod
    def feed_config(url: str, **changes: Any) -> BinanceFeedConfig:
        return feed_config(url, **changes)


def eventually(
    condition: Callable[[], T | None],
    what: str | Callable[[], str],
    timeout: float = 5.0,
    interval: float = 0.05,
) -> T:
    """Poll `condition()` in this thread until it is truthy and return it; fail the test
    naming `what` (text, or a function giving it then) after `timeout` seconds. The async
    twin is `Aio.eventually`."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {_described(what)}")
        time.sleep(interval)
    assert found is not None  # for mypy: a truthy value is never None
    return found


def _described(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()


def feed_config(url: str, **changes: Any) -> BinanceFeedConfig:
    """A Binance feed for loopback tests: no control pacing, short backoff."""
    values: dict[str, Any] = {
        "base_url": url,
        "backoff": Backoff(initial_seconds=0.05, maximum_seconds=0.2, jitter=0.5),
        "control_interval_seconds": 0.0,
        "reply_timeout_seconds": 2.0,
        "open_timeout_seconds": 2.0,
        "seed": 1,
    }
    values.update(changes)
    return BinanceFeedConfig(**values)


def independent_second_candles(capture: Path) -> pd.DataFrame:
    """The capture's 1 s candles without any tradepipe code: json, pandas and math.fsum."""
    rows = []
    with gzip.open(capture, "rt") as lines:
        for line in lines:
            message = json.loads(line.split(" ", 1)[1])
            if message.get("stream", "").endswith("@trade"):
                data = message["data"]
                rows.append((data["T"], float(data["p"]), float(data["q"]), not data["m"]))
    trades = pd.DataFrame(rows, columns=["time", "price", "qty", "taker_buy"])
    trades["start_ms"] = trades["time"] - trades["time"] % 1000
    trades["buy_qty"] = trades["qty"].where(trades["taker_buy"], 0.0)
    frame = trades.groupby("start_ms", sort=True).agg(
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("qty", math.fsum),
        taker_buy_volume=("buy_qty", math.fsum),
        trade_count=("price", "size"),
    )
    return frame.reset_index().astype({"trade_count": "float64"})


@contextlib.contextmanager
def venue_rest(symbols: Iterable[str] = ("BTCUSDT", "ETHUSDT")) -> Iterator[str]:
    """The replay's Binance-style REST side on loopback, in a thread of its own (for
    synchronous callers such as the CLI): yields its base URL; its exchangeInfo lists
    `symbols`."""
    from live.replay.rest import RestServer, TradeRecord

    server = RestServer(TradeRecord(), symbols)
    loop = asyncio.new_event_loop()
    ready: concurrent.futures.Future[int] = concurrent.futures.Future()

    def serve() -> None:
        asyncio.set_event_loop(loop)

        async def begin() -> None:
            ready.set_result(await server.start("127.0.0.1", 0))

        loop.run_until_complete(begin())
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    thread = threading.Thread(target=serve, name="venue-rest", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{ready.result(timeout=10)}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def fresh_pg_database(prefix: str) -> Iterator[URL]:
    """A new, empty PostgreSQL database on TRADEPIPE_TEST_PG_URL's server, dropped at the
    end (connections still open are closed); skips when the server is not reachable (CI
    makes that a failure)."""
    admin_url = make_url(os.environ.get("TRADEPIPE_TEST_PG_URL", DEFAULT_PG_URL))
    if admin_url.drivername in {"postgres", "postgresql"}:
        admin_url = admin_url.set(drivername="postgresql+psycopg")
    admin = sa.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect():
            pass
    except sa.exc.OperationalError as error:
        admin.dispose()
        pytest.skip(
            f"PostgreSQL not reachable at {mask_url(admin_url)}: {error.orig}; "
            "start it or set TRADEPIPE_TEST_PG_URL"
        )
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
