"""`tradepipe feed replay` as a user runs it: a real process, a real client, a clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys

from websockets.asyncio.client import connect

from tests.support import Aio


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _first_trade(url: str) -> dict[str, object]:
    async def received() -> dict[str, object] | None:
        try:
            async with connect(url, open_timeout=2) as client:
                raw = await asyncio.wait_for(client.recv(), timeout=10)
                return json.loads(raw)  # type: ignore[no-any-return]
        except OSError:  # the process is not listening yet
            return None

    found: dict[str, object] = await Aio.eventually(received, "a trade from the replay", 20, 0.2)
    return found


def test_synthetic_replay_serves_binance_trades_and_stops_on_sigterm() -> None:
    port, rest_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "feed", "replay", "--source", "synthetic",
         "--speed", "0", "--port", str(port), "--rest-port", str(rest_port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    try:
        message = asyncio.run(_first_trade(f"ws://127.0.0.1:{port}/stream?streams=btcusdt@trade"))
        assert message["stream"] == "btcusdt@trade"
        data = message["data"]
        assert isinstance(data, dict) and data["e"] == "trade" and data["s"] == "BTCUSDT"
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "replaying" in out


def test_missing_capture_is_one_line() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "app", "feed", "replay", "--source", "missing.txt.gz"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 1
    assert completed.stderr.startswith("error:") and "missing.txt.gz" in completed.stderr
