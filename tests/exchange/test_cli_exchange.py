"""`tradepipe feed replay --exchange-port`: the exchange simulator beside the replay feed,
in a real process, answering the real ccxt client with the named credentials."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

from live.brokers.ccxt_broker import CcxtBroker
from tests.brokers.helpers import API_KEY, API_SECRET, exchange_config
from tests.support import Aio


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _balance(url: str) -> dict[str, object]:
    broker = CcxtBroker(exchange_config(url), api_key=API_KEY, secret=API_SECRET)

    async def fetched() -> dict[str, object] | None:
        try:
            return dict(await broker.client.fetch_balance())
        except Exception:
            return None  # the replay process is still starting

    try:
        found: dict[str, object] = await Aio.eventually(
            fetched, f"a balance from the exchange simulator at {url}", 30, 0.2
        )
        return found
    finally:
        await broker.close()


def test_the_replay_serves_the_exchange_simulator_with_named_credentials() -> None:
    port, rest_port, exchange_port = _free_port(), _free_port(), _free_port()
    env = {**os.environ, "SIMNET_API_KEY": API_KEY, "SIMNET_API_SECRET": API_SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "feed", "replay", "--source", "synthetic",
         "--speed", "0", "--port", str(port), "--rest-port", str(rest_port),
         "--exchange-port", str(exchange_port), "--exchange-balance", "2500"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        balance = asyncio.run(_balance(f"http://127.0.0.1:{exchange_port}"))
        assert balance["USDT"] == {"free": 2500.0, "used": 0.0, "total": 2500.0}
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert f"exchange simulator (Binance spot REST) on http://127.0.0.1:{exchange_port}" in out
    assert API_SECRET not in out + err


def test_missing_exchange_credentials_are_one_line_naming_them() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "app", "feed", "replay", "--exchange-port", "0",
         "--exchange-credentials", "NOPE"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 1
    assert completed.stderr.startswith("error:") and "NOPE_API_KEY" in completed.stderr
