"""The engine as a real process (`python -m live.engine`, the entry `tradepipe live run` calls
with engine settings given on the command line) for the crash, storage and chaos tests:
start it on a replay server, read its /health, kill or stop it; and what the database says
of the bots' books."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from live.replay import ReplayServer
from tests.engine.helpers import Aio, query

T = TypeVar("T")

FAST_PROCESS = {
    "heartbeat_seconds": 0.2,
    "bot_reload_seconds": 0.5,
    "tick_seconds": 0.05,
    "candle_close_grace_seconds": 0.5,
    "stop_timeout_seconds": 5,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def engine_command(
    url: str,
    replay: ReplayServer,
    strategies: Path,
    engine_id: str = "crash-test",
    **settings: object,
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "live.engine",
        "--database-url",
        url,
        "--feed-url",
        replay.url,
        "--rest-url",
        str(replay.rest_url),
        "--strategies-dir",
        str(strategies),
        "--engine-id",
        engine_id,
    ]
    for name, value in {**FAST_PROCESS, **settings}.items():
        command += ["--set", f"{name}={value}"]
    return command


def start(command: list[str], log: Path, **env_extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEPIPE_")}
    env["TRADEPIPE_HOME"] = str(log.parent / "var")
    env.update(env_extra)
    with log.open("ab") as output:
        return subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=log.parent
        )


class EngineProcess:
    """One engine command, started as often as a test needs, with its API on a free port."""

    def __init__(
        self,
        url: str,
        replay: ReplayServer,
        strategies: Path,
        log: Path,
        engine_id: str = "crash-test",
        **settings: object,
    ) -> None:
        self.engine_id = engine_id
        self.command = engine_command(url, replay, strategies, engine_id, **settings)
        self.log = log
        self.api_port = free_port()
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def current(self) -> subprocess.Popen[bytes]:
        return self.processes[-1]

    def start(self) -> subprocess.Popen[bytes]:
        process = start(self.command, self.log, TRADEPIPE_ENGINE_API_PORT=str(self.api_port))
        self.processes.append(process)
        return process

    async def kill(self) -> int:
        self.current.send_signal(signal.SIGKILL)
        return await asyncio.to_thread(self.current.wait, 10)

    async def stop(self) -> int:
        self.current.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.current.wait, 30)

    def health(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """The body of GET /health (200 or 503), None while the API does not answer."""
        url = f"http://127.0.0.1:{self.api_port}/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as answer:
                body = answer.read()
        except urllib.error.HTTPError as error:
            try:
                body = error.read()
            except OSError:
                return None
        except OSError:
            return None
        data = json.loads(body)
        return data if isinstance(data, dict) else None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    async def until(self, condition: Callable[[], T], what: str, timeout: float = 90.0) -> T:
        """Poll `condition` (in a thread) until it is truthy; fail naming `what`, with the
        engine's log."""
        return await Aio.eventually_in_thread(condition, what, self.log, timeout, 0.05)

    def cleanup(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def books(url: str) -> dict[str, dict[str, Any]]:
    rows = query(url, "SELECT b.name, s.book FROM bot_states s JOIN bots b ON b.id = s.bot_id")
    return {
        row.name: json.loads(row.book) if isinstance(row.book, str) else row.book for row in rows
    }


def open_positions(url: str) -> dict[tuple[str, int], dict[str, Any]]:
    return {(name, p["seq"]): p for name, book in books(url).items() for p in book["positions"]}


def working_orders(url: str) -> set[str]:
    return {
        order["client_order_id"]
        for position in open_positions(url).values()
        for order in (position["entry"], *position["exits"])
        if order["status"] in ("new", "open", "partially_filled")
    }


def last_event_id(url: str) -> int:
    return int(query(url, "SELECT MAX(id) AS id FROM events")[0].id or 0)


def reconciled_after(url: str, last_id: int) -> dict[str, Any] | None:
    rows = query(
        url,
        "SELECT id, payload FROM events WHERE kind = 'engine_reconciled' "
        "AND id > :last ORDER BY id",
        last=last_id,
    )
    if not rows:
        return None
    payload = rows[-1].payload
    return json.loads(payload) if isinstance(payload, str) else payload


def log_waiter(log: Path) -> Callable[..., Awaitable[Any]]:
    """`await until(condition, what, timeout=30)`: polls `condition` (in a thread: it may
    query the database) until it returns something true, which it returns; on timeout an
    AssertionError quoting the engine log."""

    async def until(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
        return await Aio.eventually_in_thread(condition, what, log, timeout)

    return until
