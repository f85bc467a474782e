"""Helpers of the feed and replay tests: a bounded asyncio runner, fast feed settings, and
the capture's candles computed independently of tradepipe (json + pandas only)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pandas as pd
import pytest

from tests import support

T = TypeVar("T")
BTC_CAPTURE = "binance_spot_btcusdt_ws_2024-08-08.txt.gz"
CAPTURE_TRADES = 9757
TEST_TIMEOUT = 20.0


class Aio(support.Aio):
    RUN_TIMEOUT = TEST_TIMEOUT
    EVENTUALLY_TIMEOUT = 5.0


@pytest.fixture
def aio() -> Aio:
    return Aio()


@pytest.fixture
def capture(shared_data: Path) -> Path:
    return shared_data / BTC_CAPTURE


@pytest.fixture
def expected_seconds(capture: Path) -> pd.DataFrame:
    return support.independent_second_candles(capture)
