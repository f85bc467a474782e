"""Several engines on PostgreSQL: how long a SIGKILLed engine's bots wait for another engine,
and how many orders three engines write against one.

Takeover: two engine processes (`python -m live.engine`, paper broker, a replay of the
synthetic market) with room for all 4 bots; the one holding them is SIGKILLed 10 times.
Takeover time is from the SIGKILL to the first order of its bots written by the other
(their leases lapse after the TTL, the other claims them at its next renewal, restores
their books and agrees their orders with the venue, then trades); the time to the
takeover's `bots_claimed` event (lease held, recovery done) is shown too. The reference,
measured in the same run, is what one engine without a standby pays: the killed engine
restarted at once, until its API answers running (imports, migration, reconciliation),
before it could trade again.

Write rate: 30 bots that enter on every candle with short exits, the replay as fast as
the engines read it, orders written per second over a window, by three engines sharing
the bots (10 each) against one engine running all 30 (the reference).

Prints a note and measures nothing when no PostgreSQL server is reachable.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.postgres import fresh_database
from live.replay import ReplayServer, SyntheticSource
from tradepipe.botconfig import parse_bot_config
from tradepipe.bots import NewBot, add_bot
from tradepipe.db import create_engine_for, session_scope

START_MS = 1_704_067_200_000 + 3_600_000
KILLS = 10
TAKEOVER_BOTS = 4
TTL_SECONDS = 2.0
WRITE_BOTS = 30
WRITE_WINDOW_SECONDS = 15.0
STRATEGY = """
    from tradepipe.strategy import Enter, Strategy, StrategyParameters

    class Always(Strategy[StrategyParameters]):
        def on_candle(self, context):
            return Enter(reason="always") if context.can_enter else None
"""
BOT_CONFIG = {
    "capital_per_trade": 100.0,
    "take_profit_pct": 0.1,
    "stop_loss_pct": 0.1,
    "max_holding_seconds": 30.0,
    "maker_order_timeout_seconds": 10.0,
    "max_open_positions": 2,
}
FAST = {
    "heartbeat_seconds": 0.2,
    "bot_reload_seconds": 0.5,
    "tick_seconds": 0.05,
    "candle_close_grace_seconds": 0.5,
    "stop_timeout_seconds": 5,
}


class Cluster:
    """Engine processes on one database and replay, each with its API on a free port."""

    def __init__(self, url: str, replay: ReplayServer, folder: Path) -> None:
        self.url = url
        self.replay = replay
        self.folder = folder
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.database = create_engine_for(url)

    def start(self, engine_id: str, **settings: object) -> None:
        command = [
            sys.executable, "-m", "live.engine", "--database-url", self.url,
            "--feed-url", self.replay.url, "--rest-url", str(self.replay.rest_url),
            "--strategies-dir", str(self.folder / "strategies"), "--engine-id", engine_id,
        ]  # fmt: skip
        for name, value in {**FAST, **settings}.items():
            command += ["--set", f"{name}={value}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEPIPE_")}
        self.ports.setdefault(engine_id, _free_port())
        env["TRADEPIPE_HOME"] = str(self.folder / "var")
        env["TRADEPIPE_ENGINE_API_PORT"] = str(self.ports[engine_id])
        log = (self.folder / f"{engine_id}.log").open("ab")
        self.processes[engine_id] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.folder
        )
        log.close()

    def kill(self, engine_id: str) -> None:
        process = self.processes[engine_id]
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(30)
        self.database.dispose()

    def state(self, engine_id: str) -> str | None:
        url = f"http://127.0.0.1:{self.ports[engine_id]}/health"
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return str(json.loads(answer.read()).get("state"))
        except urllib.error.HTTPError as error:
            return str(json.loads(error.read()).get("state"))
        except (OSError, ValueError):
            return None

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.database.connect() as connection:
            return connection.execute(sa.text(sql), params).scalar()

    def owners(self) -> set[str]:
        rows = self.scalar("SELECT string_agg(DISTINCT owner, ',') FROM bot_leases")
        return set(rows.split(",")) if rows else set()


async def until(condition: Callable[[], Any], what: str, timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(condition)
        if found:
            return found
        await asyncio.sleep(0.02)
    raise RuntimeError(f"benchmark: timed out waiting for {what}")


def _up(cluster: Cluster, engine_id: str) -> Callable[[], bool]:
    return lambda: cluster.state(engine_id) in ("running", "degraded")


async def takeovers(cluster: Cluster) -> tuple[list[float], list[float], list[float]]:
    """(kill -> first order on the other, kill -> bots_claimed, restart -> running), s."""
    settings = {"lease_ttl_seconds": TTL_SECONDS, "engine_max_bots": TAKEOVER_BOTS}
    cluster.start("a", **settings)
    await until(lambda: cluster.owners() == {"a"}, "engine a holding the bots")
    cluster.start("b", **settings)
    await until(_up(cluster, "b"), "engine b running")
    to_order, to_claimed, restarts = [], [], []
    for _ in range(KILLS):
        (owner,) = cluster.owners()
        killed = time.monotonic()
        await asyncio.to_thread(cluster.kill, owner)
        # read once it is dead: whatever comes after is the other engine's
        last_order = cluster.scalar("SELECT COALESCE(MAX(id), 0) FROM orders")
        last_event = cluster.scalar("SELECT COALESCE(MAX(id), 0) FROM events")
        claimed = None
        while True:
            if claimed is None and cluster.scalar(
                "SELECT COUNT(*) FROM events WHERE kind = 'bots_claimed' AND id > :last",
                last=last_event,
            ):
                claimed = time.monotonic() - killed
            if cluster.scalar("SELECT COUNT(*) FROM orders WHERE id > :last", last=last_order):
                to_order.append(time.monotonic() - killed)
                break
            if time.monotonic() - killed > 180:
                raise RuntimeError("benchmark: the bots never traded again after a kill")
            await asyncio.sleep(0.02)
        to_claimed.append(claimed if claimed is not None else to_order[-1])
        restarted = time.monotonic()
        cluster.start(owner, **settings)  # the next kill's standby
        await until(_up(cluster, owner), f"engine {owner} restarted")
        restarts.append(time.monotonic() - restarted)
    return to_order, to_claimed, restarts


async def write_rate(cluster: Cluster, engines: int) -> float:
    """Orders written per second by `engines` engines sharing every bot evenly."""
    share = -(-WRITE_BOTS // engines)
    ids = [f"w{engines}-{n}" for n in range(engines)]
    for engine_id in ids:
        cluster.start(engine_id, lease_ttl_seconds=30, engine_max_bots=share)
    held = "SELECT COUNT(*) FROM bot_leases WHERE expires_at > clock_timestamp()"
    await until(lambda: cluster.scalar(held) == WRITE_BOTS, "every bot leased")
    count = "SELECT COUNT(*) FROM orders"
    first = cluster.scalar(count)
    trading = "SELECT COUNT(DISTINCT bot_id) FROM orders WHERE id > :first"
    # started, connected, warmed up: every bot has ordered in this run
    await until(lambda: cluster.scalar(trading, first=first) == WRITE_BOTS, "every bot trading")
    before, started = cluster.scalar(count), time.monotonic()
    await asyncio.sleep(WRITE_WINDOW_SECONDS)
    rate = (cluster.scalar(count) - before) / (time.monotonic() - started)
    for engine_id in ids:
        await asyncio.to_thread(cluster.kill, engine_id)
    with cluster.database.begin() as connection:
        connection.execute(sa.text("DELETE FROM bot_leases"))  # the next run starts free
    return float(rate)  # the database is kept: the next run restores the same bots


def prepare(url: str, folder: Path, bots: int) -> None:
    strategies = folder / "strategies"
    strategies.mkdir(exist_ok=True)
    (strategies / "always.py").write_text(textwrap.dedent(STRATEGY))
    database = create_engine_for(url)
    try:
        with session_scope(database) as session:
            for index in range(bots):
                config = parse_bot_config(BOT_CONFIG)
                add_bot(
                    session,
                    NewBot(f"bot{index:02d}", "always", "BTCUSDT", "1s", config),
                    strategies,
                )
    finally:
        database.dispose()


async def measure_takeovers(url: str, folder: Path) -> tuple[list[float], ...]:
    source = SyntheticSource(["BTCUSDT"], start_ms=START_MS)
    async with ReplayServer(source, speed=20.0) as replay:
        cluster = Cluster(url, replay, folder)
        try:
            return await takeovers(cluster)
        finally:
            await asyncio.to_thread(cluster.close)


async def measure_writes(url: str, folder: Path, engines: int) -> float:
    """One replay per run, as fast as the engines read (speed 0), starting once every
    engine has subscribed: no market runs ahead while the engines start."""
    source = SyntheticSource(["BTCUSDT"], start_ms=START_MS)
    async with ReplayServer(source, speed=0.0, wait_for_subscribers=engines) as replay:
        cluster = Cluster(url, replay, folder)
        try:
            return await write_rate(cluster, engines)
        finally:
            await asyncio.to_thread(cluster.close)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run() -> None:
    run_takeovers()
    run_writes()


def run_takeovers() -> None:
    folder = Path(tempfile.mkdtemp(prefix="tradepipe-bench-leases-"))
    try:
        with fresh_database("leases (takeover)") as url:
            if url is not None:
                prepare(url, folder, TAKEOVER_BOTS)
                _report_takeovers(*asyncio.run(measure_takeovers(url, folder)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_writes() -> None:
    folder = Path(tempfile.mkdtemp(prefix="tradepipe-bench-leases-"))
    try:
        with fresh_database("leases (order writes)") as url:
            if url is not None:
                prepare(url, folder, WRITE_BOTS)
                one = asyncio.run(measure_writes(url, folder, 1))
                three = asyncio.run(measure_writes(url, folder, 3))
                _report_writes(one, three)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report_takeovers(
    to_order: list[float], to_claimed: list[float], restarts: list[float]
) -> None:
    print(
        f"takeover on PostgreSQL: SIGKILL of the engine holding {TAKEOVER_BOTS} bots, "
        f"{KILLS} kills, lease TTL {TTL_SECONDS:g} s"
    )
    for name, values in (
        ("kill -> first order on the other engine", to_order),
        ("kill -> lease held and recovery done", to_claimed),
        ("restart of the killed engine -> running (ref.)", restarts),
    ):
        print(
            f"  {name:<48} p50 {statistics.median(values):6.2f} s  "
            f"p95 {_percentile(values, 0.95):6.2f} s"
        )
    ratio = statistics.median(to_order) / statistics.median(restarts)
    print(f"  ratio takeover p50 / restart p50: {ratio:.3g} (TTL floor {TTL_SECONDS:g} s)")


def _report_writes(one: float, three: float) -> None:
    print(
        f"order writes on PostgreSQL: {WRITE_BOTS} bots entering every candle, replay as fast "
        f"as read, {WRITE_WINDOW_SECONDS:g} s window"
    )
    print(f"  three engines ({WRITE_BOTS // 3} bots each)   {three:10.1f} orders/s")
    print(f"  one engine, all {WRITE_BOTS} bots (ref.)   {one:10.1f} orders/s")
    print(f"  ratio three / one: {three / one if one else float('inf'):.3g}")
