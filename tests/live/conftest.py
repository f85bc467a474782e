"""Helpers of the feed and replay tests: a bounded asyncio runner, fast feed settings, and
the capture's candles computed independently of tradepipe (json + pandas only)."""

from __future__ import annotations

import asyncio
import gzip
import json
import math
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest

from live.feeds import BackoffPolicy, BinanceFeedConfig

T = TypeVar("T")
BTC_CAPTURE = "binance_spot_btcusdt_ws_2024-08-08.txt.gz"
CAPTURE_TRADES = 9757
TEST_TIMEOUT = 20.0


class Aio:
    """asyncio for tests without pytest-asyncio: every wait is bounded, so none can hang."""

    @staticmethod
    def run(coroutine: Coroutine[Any, Any, T], timeout: float = TEST_TIMEOUT) -> T:
        """Run one test coroutine; a hang fails the test after `timeout` seconds."""

        async def bounded() -> T:
            return await asyncio.wait_for(coroutine, timeout)

        return asyncio.run(bounded())

    @staticmethod
    async def eventually(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
        """Poll until `condition()` holds; fail the test naming `what` after `timeout`."""

        async def poll() -> None:
            while not condition():
                await asyncio.sleep(0.005)

        try:
            await asyncio.wait_for(poll(), timeout)
        except TimeoutError:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")

    @staticmethod
    async def within(awaitable: Awaitable[T], timeout: float = 5.0) -> T:
        return await asyncio.wait_for(awaitable, timeout)

    @staticmethod
    def feed_config(url: str, **changes: Any) -> BinanceFeedConfig:
        """Feed settings for loopback tests: no control pacing, short backoff."""
        settings: dict[str, Any] = {
            "base_url": url,
            "backoff": BackoffPolicy(initial_seconds=0.05, maximum_seconds=0.2, jitter=0.5),
            "control_interval_seconds": 0.0,
            "reply_timeout_seconds": 2.0,
            "open_timeout_seconds": 2.0,
            "seed": 1,
        }
        settings.update(changes)
        return BinanceFeedConfig(**settings)


@pytest.fixture
def aio() -> Aio:
    return Aio()


@pytest.fixture
def capture(shared_data: Path) -> Path:
    return shared_data / BTC_CAPTURE


def independent_second_candles(capture: Path) -> pd.DataFrame:
    """The capture's 1 s candles without any tradepipe code (as tests/kernel/test_candles)."""
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
    second = trades.groupby("start_ms", sort=True)
    frame = second.agg(
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("qty", math.fsum),
        taker_buy_volume=("buy_qty", math.fsum),
        trade_count=("price", "size"),
    )
    return frame.reset_index().astype({"trade_count": "float64"})


@pytest.fixture
def expected_seconds(capture: Path) -> pd.DataFrame:
    return independent_second_candles(capture)
