"""The engine fed by a replay server in a separate process, over a loopback WebSocket.

The replay runs in its own process (multiprocessing, spawned), serving the real Binance
BTCUSDT capture's trade messages `LOOPS` times over (each pass moved one span later with
trade ids continued, as the replay's own `loop` does), prepared in memory before it
serves, as fast as the engine takes them (the server's queue per client is bounded: a
slow client slows the replay). The engine is a real one (`build_engine`, SQLite, paper
broker, `BOTS` bots on BTCUSDT's 1 s candles, the shipped `ema_rsi` and an always-enter
strategy), its feed the native Binance adapter pointed at the replay. The market starts
once the engine has started (a second subscriber, this benchmark's, releases the replay's
timeline), and the figure is the engine's ingest: trades the trading core took per second
of wall time until the last one was in.

Reference, in the same run: the feed's pipeline in-process without sockets (router -> 1 s
-> 1 m -> features, the `bench_feed` pipeline) on the same messages. Target (issue 17):
>= 50,000 messages a second into the engine. Nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from benchmarks.bench_engine import BOT_CONFIG, QUIET, bot_names, prepare_folder
from benchmarks.bench_feed import CAPTURE_FILE, Pipeline, _through_router
from benchmarks.harness import Measurement, best_of, report
from live.engine import EngineConfig, build_engine
from live.feeds import BinanceFeed, BinanceFeedConfig, FeedState
from live.replay import CaptureSource, ReplayMessage, ReplayServer
from tradepipe.db import upgrade_database

TARGET_PER_SECOND = 50_000
LOOPS = 12  # passes over the capture's 9,757 trades: a few seconds of play at the target
BOTS = 10


class PreparedTrades:
    """The trade messages of `loops` passes over a capture, held in memory: the replay
    process then spends its time sending, not reading and re-encoding the file."""

    def __init__(self, path: Path, loops: int) -> None:
        source = CaptureSource(path, loop=True)
        self.symbols = source.symbols
        self.description = f"{source.description}, trades x{loops}"
        per_pass = sum(1 for m in CaptureSource(path).messages(0, 0) if m.trade is not None)
        wanted = per_pass * loops
        self.prepared: list[ReplayMessage] = []
        for message in source.messages(0, 0):
            if message.trade is not None:
                self.prepared.append(message)
                if len(self.prepared) >= wanted:
                    break

    def messages(self, wall_start_ns: int, speed: float) -> Iterator[ReplayMessage]:
        return iter(self.prepared)


def serve_in_process(answers: Connection, loops: int) -> None:
    """The replay process: prepare, serve on a free port (told through `answers`) once two
    clients subscribed, until told to stop."""

    async def main() -> None:
        source = PreparedTrades(CAPTURE_FILE, loops)
        began = time.process_time()
        async with ReplayServer(
            source, speed=0.0, rest_port=None, wait_for_subscribers=2
        ) as server:
            answers.send((server.url, len(source.prepared)))
            await server.finished.wait()
            # the CPU the replay spent: the whole timeline (the wait before it costs none)
            answers.send(time.process_time() - began)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, answers.recv)  # "stop"

    asyncio.run(main())


@dataclass
class Ingest:
    label: str
    seconds: float = float("nan")  # from the market's release to the last trade in
    cpu_seconds: float = float("nan")  # what this process spent meanwhile
    taken: int = 0
    offered: int = 0
    replay_cpu_seconds: float = float("nan")


async def _until_in(url: str, count: Callable[[], int], wanted: int, run: Ingest) -> None:
    """Release the replay's timeline (as its second subscriber) and wait for `wanted`."""
    async with connect(f"{url}/stream?streams=btcusdt@bookTicker", compression=None):
        began, cpu = time.perf_counter(), time.process_time()
        deadline = began + 120.0
        while count() < wanted and time.perf_counter() < deadline:
            await asyncio.sleep(0.002)
        run.seconds, run.cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    run.taken = count()


async def feed_ingest(url: str, run: Ingest) -> None:
    """The native feed and the per-symbol pipeline of bench_feed, no engine around them."""
    feed = BinanceFeed(BinanceFeedConfig(base_url=url, control_interval_seconds=0))
    await feed.subscribe(["BTCUSDT"], Pipeline())
    await feed.start()
    try:
        while feed.status().state is not FeedState.CONNECTED:  # subscribed: the replay waits
            await asyncio.sleep(0.01)
        await _until_in(url, lambda: feed.metrics().trades, run.offered, run)
    finally:
        await feed.stop()


async def engine_ingest(url: str, run: Ingest, folder: Path) -> None:
    """A real engine whose feed is pointed at the replay: trades into its trading core."""
    database = f"sqlite:///{folder / 'trading.db'}"
    upgrade_database(database)
    bots = ((*named, "1s") for named in bot_names(["BTCUSDT"], BOTS))
    strategies = prepare_folder(folder, database, bots, BOT_CONFIG)
    config = EngineConfig(
        database_url=database, strategies_dir=strategies, **{**QUIET, "feed_url": url}
    )
    engine = build_engine(config)
    await engine.start()
    try:
        while len(engine.core.bots) < BOTS:
            await asyncio.sleep(0.05)
        metrics = engine.core.metrics
        await _until_in(url, lambda: metrics.trades, run.offered, run)
    finally:
        await engine.stop()


def with_replay_process(
    run: Ingest, consume: Callable[[str, Ingest], Coroutine[Any, Any, None]]
) -> bool:
    """Start a replay process, let `consume(url, run)` take its market, stop it; False if
    the replay did not start."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    replay = context.Process(target=serve_in_process, args=(theirs, LOOPS), daemon=True)
    replay.start()
    try:
        if not ours.poll(120):
            print("  the replay process did not start within 120 s; nothing measured")
            return False
        url, run.offered = ours.recv()
        asyncio.run(consume(url, run))
        run.replay_cpu_seconds = ours.recv() if ours.poll(30) else float("nan")
        return True
    finally:
        ours.send("stop")
        replay.join(10)
        if replay.is_alive():
            replay.terminate()


def report_ingest(run: Ingest, reference: Measurement) -> None:
    measured = Measurement(run.label, run.seconds, run.taken, "msgs")
    report(
        f"{run.taken:,} of {run.offered:,} trade messages from a separate replay process",
        measured,
        reference,
    )
    met = measured.rate >= TARGET_PER_SECOND and run.taken >= run.offered
    print(
        f"  ingest {measured.rate:,.0f} msgs/s; target >= {TARGET_PER_SECOND:,}/s: "
        f"{'MET' if met else 'MISSED'}"
    )
    # wall time on a shared machine is also everyone else's load: the CPU each process
    # spent says what the code costs, and what rate a core each would give
    ours = run.cpu_seconds / max(run.taken, 1) * 1e6
    theirs = run.replay_cpu_seconds / max(run.offered, 1) * 1e6
    print(
        f"  CPU per message: this process {ours:.1f} us, the replay process {theirs:.1f} us; "
        f"with a core each: {1e6 / max(ours, theirs):,.0f} msgs/s (load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


def run() -> None:
    if not CAPTURE_FILE.is_file():
        print(f"  skipped: {CAPTURE_FILE} not found (the shared exchange data)")
        return
    raw = [m.raw for m in PreparedTrades(CAPTURE_FILE, 1).prepared]
    reference = Measurement(
        "pipeline in-process, no socket",
        best_of(5, lambda: _through_router(raw, Pipeline())),
        len(raw),
        "msgs",
    )
    feed = Ingest("replay process -> socket -> feed -> pipeline")
    if with_replay_process(feed, feed_ingest):
        report_ingest(feed, reference)
    engine = Ingest(f"replay process -> socket -> engine, {BOTS} bots")
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as folder:
        consume = functools.partial(engine_ingest, folder=Path(folder))
        if with_replay_process(engine, consume):
            report_ingest(engine, reference)


if __name__ == "__main__":
    run()
