"""Several engine processes on one PostgreSQL database, watched from outside: who owns which
bot by the lease rows and by what each engine says it runs (/health), sampled every 100 ms
in a thread of its own, and the orders each bot has written."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from types import TracebackType

import sqlalchemy as sa

from tests.engine.helpers import query
from tests.engine.processes import EngineProcess
from tradepipe.db import create_engine_for

# An engine that is stopping has handed its leases back (or is about to): what it still lists
# is a bot it no longer runs.
_RUNNING_ENGINE = ("starting", "reconciling", "running", "degraded")


def running_bots(engine: EngineProcess) -> set[str]:
    """The bots `engine` says it runs now (empty when it does not answer or is stopping)."""
    health = engine.health(timeout=0.5)
    if health is None or health.get("state") not in _RUNNING_ENGINE:
        return set()
    return {bot["name"] for bot in health.get("bots", []) if bot.get("state") != "stopped"}


def lease_owners(url: str) -> dict[str, tuple[str, int]]:
    """Bot name -> (owner, epoch) of every lease row, live or expired."""
    rows = query(
        url,
        "SELECT b.name, l.owner, l.epoch FROM bot_leases l JOIN bots b ON b.id = l.bot_id",
    )
    return {row.name: (row.owner, row.epoch) for row in rows}


def held_by(url: str, owner: str) -> set[str]:
    """The bots `owner` holds a live lease on."""
    rows = query(
        url,
        "SELECT b.name FROM bot_leases l JOIN bots b ON b.id = l.bot_id "
        "WHERE l.owner = :owner AND l.expires_at > clock_timestamp()",
        owner=owner,
    )
    return {row.name for row in rows}


def order_ids(url: str) -> dict[str, str]:
    """Client order id -> bot name of every order written."""
    rows = query(
        url, "SELECT o.client_order_id, b.name FROM orders o JOIN bots b ON b.id = o.bot_id"
    )
    return {row.client_order_id: row.name for row in rows}


class OwnershipSampler:
    """Every `period` seconds: each engine's running bots (/health, read first: an engine
    runs a bot only once it holds the lease, so a bot seen running and then leased to
    another is a real double), then the lease rows. Records any bot two engines run at
    once, any bot run by an engine while another holds its live lease, and any epoch held
    by two engines or going back."""

    def __init__(self, url: str, engines: Iterable[EngineProcess], period: float = 0.1) -> None:
        self.engines = list(engines)
        self.period = period
        self.samples = 0
        self.doubles: list[str] = []
        self._database = create_engine_for(url)
        self._epoch_owners: dict[tuple[str, int], set[str]] = defaultdict(set)
        self._last_epoch: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ownership-sampler", daemon=True)

    def add(self, engine: EngineProcess) -> None:
        self.engines = [*self.engines, engine]

    def __enter__(self) -> OwnershipSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._database.dispose()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def sample(self) -> None:
        runners: dict[str, list[str]] = defaultdict(list)
        for engine in self.engines:
            for bot in running_bots(engine):
                runners[bot].append(engine.engine_id)
        with self._database.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT b.name, l.owner, l.epoch, l.expires_at > clock_timestamp() AS live "
                    "FROM bot_leases l JOIN bots b ON b.id = l.bot_id"
                )
            ).all()
        self.samples += 1
        for bot, engines in runners.items():
            if len(engines) > 1:
                self.doubles.append(f"sample {self.samples}: {bot} run by {sorted(engines)}")
        for row in rows:
            others = [e for e in runners.get(row.name, []) if e != row.owner]
            if row.live and others:
                self.doubles.append(
                    f"sample {self.samples}: {row.name} leased to {row.owner} (epoch "
                    f"{row.epoch}) but run by {others}"
                )
            owners = self._epoch_owners[(row.name, row.epoch)]
            owners.add(row.owner)
            if len(owners) > 1:
                self.doubles.append(f"{row.name}: epoch {row.epoch} held by {sorted(owners)}")
            if row.epoch < self._last_epoch.get(row.name, 0):
                self.doubles.append(f"{row.name}: epoch went back to {row.epoch}")
            self._last_epoch[row.name] = row.epoch
