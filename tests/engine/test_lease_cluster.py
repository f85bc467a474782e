"""Three engine processes (`python -m live.engine`) share 30 paper bots on the real PostgreSQL
server, trading on one replay feed. One is SIGKILLed while its bots hold open positions:
its bots trade again on the others once their leases lapse and recovery is done. A sampler
reading every engine's /health and the lease rows every 100 ms never sees a bot owned
twice; no order is written twice and every position agrees with its orders, after every
engine is SIGKILLed at the end too. A fourth engine joining takes no bot while every bot is
held by a live engine, and takes a dead engine's bots only up to its capacity.

The rule for a joining engine: bots move only when their engine is gone (its leases
lapsed), gives them up at a graceful stop, or holds more than its `engine_max_bots`; a
newcomer takes free and expired bots only, never a live engine's (a move costs the bot a
stop and a recovery, so balance comes from capacity, not from taking over)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from live.replay import ReplayServer, SyntheticSource
from tests.engine.cluster import OwnershipSampler, held_by, lease_owners, order_ids
from tests.engine.helpers import START_MS, Aio, MarketTimes, add_bots, query
from tests.engine.invariants import problems
from tests.engine.processes import EngineProcess, log_waiter, open_positions

pytestmark = pytest.mark.postgres

BOTS = 30
SPEED = 20  # market seconds per wall second: short exits close positions all the time
TTL_SECONDS = 8.0  # long enough that a starved engine on a loaded machine keeps its leases
# a generous bound for what only depends on the machine (process start, recovery)
WAIT = 180.0


def _payloads(url: str, kind: str) -> list[dict[str, Any]]:
    rows = query(url, "SELECT payload FROM events WHERE kind = :kind ORDER BY id", kind=kind)
    return [json.loads(r.payload) if isinstance(r.payload, str) else r.payload for r in rows]


def test_three_engines_share_30_bots_a_sigkilled_one_s_bots_move_and_none_runs_twice(
    aio: Aio, tmp_path: Path, postgres_url: str, strategies_dir: Path
) -> None:
    names = [f"c{index:02d}" for index in range(BOTS)]
    add_bots(
        postgres_url,
        strategies_dir,
        [(name, "always") for name in names],
        take_profit_pct=0.1,
        stop_loss_pct=0.1,
        max_holding_seconds=30.0,
        max_open_positions=2,
    )
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=START_MS + 3_600_000))
    log = tmp_path / "engines.log"
    until = log_waiter(log)
    engines: list[EngineProcess] = []

    async def scenario() -> None:
        async with ReplayServer(source, speed=SPEED) as replay:

            def engine(engine_id: str, max_bots: int) -> EngineProcess:
                process = EngineProcess(
                    postgres_url,
                    replay,
                    strategies_dir,
                    log,
                    engine_id,
                    lease_ttl_seconds=TTL_SECONDS,
                    engine_max_bots=max_bots,
                )
                engines.append(process)
                return process

            # the first alone takes its capacity; the two others share the rest as they race
            victim = engine("victim", 10)
            with OwnershipSampler(postgres_url, engines) as sampler:
                victims = await _victim_then_two_survivors_lease_every_bot(
                    postgres_url, engine, victim, sampler, until
                )
                owners = await _the_victim_s_bots_move_and_trade_again(
                    postgres_url, victim, victims, names, until
                )
                await _fourth_engine_takes_within_capacity(
                    postgres_url, engine, sampler, until, owners
                )
                for process in engines:  # the database must hold whenever an engine dies
                    if process.current.poll() is None:
                        assert await process.kill() == -9
                print(f"ownership samples: {sampler.samples}")
                assert sampler.samples > 100  # it sampled all along
                assert sampler.doubles == []

    try:
        aio.run(scenario(), timeout=600)
    finally:
        for process in engines:
            process.cleanup()
    assert problems(postgres_url) == []  # no order twice, positions agree with orders


async def _victim_then_two_survivors_lease_every_bot(
    url: str,
    engine: Callable[[str, int], EngineProcess],
    victim: EngineProcess,
    sampler: OwnershipSampler,
    until: Any,
) -> set[str]:
    """The victim alone takes its capacity of 10; east and west share the other 20 as they
    race. Returns the victim's bots."""
    victim.start()
    await until(lambda: len(held_by(url, "victim")) == 10, "victim's 10", WAIT)
    survivors = [engine("east", 15), engine("west", 15)]
    for process in survivors:
        sampler.add(process)
        process.start()
    await until(lambda: len(lease_owners(url)) == BOTS, "all leased", WAIT)
    victims = {b for b, (owner, _) in lease_owners(url).items() if owner == "victim"}
    assert len(victims) == 10
    return victims


async def _the_victim_s_bots_move_and_trade_again(
    url: str, victim: EngineProcess, victims: set[str], names: list[str], until: Any
) -> dict[str, tuple[str, int]]:
    """Once the victim's bots hold open positions and every bot trades, the victim is
    SIGKILLed: its bots move to east and west (one takeover each, nothing else moves) and
    resume every open position. Returns the lease owners then."""

    def victims_open() -> dict[tuple[str, int], Any]:
        found = open_positions(url)
        return {key: p for key, p in found.items() if key[0] in victims}

    await until(victims_open, "open positions in the victim's bots", WAIT)
    await until(
        lambda: {b for b in order_ids(url).values()} == set(names),
        "every bot trading",
        WAIT,
    )
    assert await victim.kill() == -9
    killed_at = time.monotonic()
    at_kill = victims_open()
    before = set(order_ids(url))

    def moved() -> bool:
        owners = lease_owners(url)
        return all(owners[b][0] in ("east", "west") for b in victims)

    await until(moved, "the victim's bots taken over", WAIT)

    def traded_again() -> bool:
        fresh = {b for i, b in order_ids(url).items() if i not in before}
        return victims <= fresh

    await until(traded_again, "the victim's bots trading again", WAIT)
    print(f"kill -> every victim bot ordering again: {time.monotonic() - killed_at:.1f} s")
    owners = lease_owners(url)
    assert all(owners[b][1] == 2 for b in victims)  # one takeover each
    assert all(owners[b][1] == 1 for b in set(names) - victims)  # nothing else moved
    counts = {e: len(held_by(url, e)) for e in ("east", "west")}
    assert sum(counts.values()) == BOTS and max(counts.values()) <= 15
    claimed = _payloads(url, "bots_claimed")
    resumed = {(i["bot"], i["seq"]) for p in claimed for i in p["resumed"]}
    assert set(at_kill) <= resumed  # every open position resumed from the database
    return owners


async def _fourth_engine_takes_within_capacity(
    url: str,
    engine: Any,
    sampler: OwnershipSampler,
    until: Any,
    owners: dict[str, tuple[str, int]],
) -> None:
    """Every bot is held by a live engine at its capacity: the fourth takes none; once one
    of them is gone (SIGKILL: its 15 leases lapse), the fourth takes its capacity of 10 and
    the other 5 stay free."""
    fourth = engine("north", 10)
    sampler.add(fourth)
    fourth.start()
    started = ("running", "degraded")  # degraded: a loaded machine may delay a renewal
    await until(lambda: (fourth.health() or {}).get("state") in started, "north running", WAIT)
    await asyncio.sleep(1.0)  # several renewals of every engine
    assert held_by(url, "north") == set()
    assert lease_owners(url) == owners  # nothing moved
    east = next(e for e in sampler.engines if e.engine_id == "east")
    handed = held_by(url, "east")
    assert len(handed) == 15
    assert await east.kill() == -9  # its 15 lapse together, a TTL later
    await until(lambda: len(held_by(url, "north")) == 10, "north's 10", WAIT)
    taken = held_by(url, "north")
    assert taken <= handed
    free = handed - taken
    assert len(free) == 5  # the rest stays free: every live engine is at its capacity
    await asyncio.sleep(1.0)
    assert held_by(url, "north") == taken and not held_by(url, "east")
    now = lease_owners(url)
    assert all(now[bot][0] == "east" for bot in free)  # lapsed, not taken
    assert all(now[bot][1] == owners[bot][1] + 1 for bot in taken)  # one takeover each
    before = set(order_ids(url))
    await until(
        lambda: taken <= {b for i, b in order_ids(url).items() if i not in before},
        "north's bots trading",
        WAIT,
    )
