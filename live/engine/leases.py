"""The engine's share of the bots on PostgreSQL: the leases it holds, renewed with its beat.

`LeaseKeeper.renew(bot_ids)` claims and renews through tradepipe/db/leases.py and says which
bots were gained (to be started through the same recovery as a start: saved book restored,
venue reconciled) and which were lost (to be dropped at once, writing nothing). `epoch`
is the fencing token the recorder stamps on each bot write when it is submitted.

An engine that cannot renew must stop entries before its leases can expire: `fresh` is
False once the last successful renewal began more than half a TTL ago (the renewal that
succeeded set expiry to at least that start plus the TTL, on the database's clock), and
the engine then blocks entries. On SQLite `enabled` is False and the engine owns every bot.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from live.engine.recovery import BotsSnapshot
from live.engine.status import LeaseStatus
from tradepipe.db.leases import claim_leases, release_leases

__all__ = ["LeaseChange", "LeaseKeeper"]

T = TypeVar("T")
Reader = Callable[[Callable[[Session], T]], Awaitable[T]]


@dataclass(frozen=True, slots=True)
class LeaseChange:
    gained: dict[int, int]  # bot id -> epoch
    lost: tuple[int, ...]


class LeaseKeeper:
    def __init__(self, owner: str, *, enabled: bool, ttl_seconds: float, max_bots: int) -> None:
        self.owner = owner
        self.enabled = enabled
        self.ttl_seconds = ttl_seconds
        self.max_bots = max_bots
        self.owned: dict[int, int] = {}
        self.held_since: dict[int, datetime] = {}  # when this engine gained each (its epoch)
        self.renewed_at: datetime | None = None
        self._renewed_monotonic: float | None = None

    def epoch(self, bot_id: int) -> int | None:
        return self.owned.get(bot_id)

    @property
    def fresh(self) -> bool:
        if not self.enabled:
            return True
        started = self._renewed_monotonic
        return started is not None and time.monotonic() - started < self.ttl_seconds / 2

    async def renew(self, read: Reader[dict[int, int]], bot_ids: Iterable[int]) -> LeaseChange:
        """Renew and claim (one transaction); raises when the database is away."""
        ids = list(bot_ids)
        started = time.monotonic()
        owned = await read(
            lambda session: claim_leases(
                session, self.owner, ids, ttl_seconds=self.ttl_seconds, max_bots=self.max_bots
            )
        )
        self._renewed_monotonic = started
        self.renewed_at = datetime.now(UTC)
        previous, self.owned = self.owned, owned
        gained = {bot_id: epoch for bot_id, epoch in owned.items() if previous.get(bot_id) != epoch}
        lost = tuple(bot_id for bot_id in previous if bot_id not in owned)
        for bot_id in gained:
            self.held_since[bot_id] = self.renewed_at
        for bot_id in lost:
            self.held_since.pop(bot_id, None)
        return LeaseChange(gained, lost)

    def forget(self, bot_id: int) -> None:
        """A write of this bot was refused: another engine holds it now."""
        self.owned.pop(bot_id, None)
        self.held_since.pop(bot_id, None)

    def mine(self, snapshot: BotsSnapshot) -> BotsSnapshot:
        """The part of the bots table this engine runs (all of it without leases)."""
        if not self.enabled:
            return snapshot
        return replace(
            snapshot,
            bots=tuple(bot for bot in snapshot.bots if bot.id in self.owned),
            invalid=tuple(bot for bot in snapshot.invalid if bot.id in self.owned),
        )

    async def release(self, read: Reader[None]) -> None:
        """At a graceful stop: the bots can be taken over at once, not a TTL later."""
        if self.enabled and self.owned:
            await read(lambda session: release_leases(session, self.owner))
            self.owned = {}
            self.held_since = {}

    def status(self, names: dict[int, str]) -> LeaseStatus:
        return LeaseStatus(
            self.enabled,
            self.ttl_seconds,
            self.max_bots,
            {names.get(bot_id, str(bot_id)): epoch for bot_id, epoch in self.owned.items()},
            self.renewed_at,
            self.fresh,
            {names.get(bot_id, str(bot_id)): at for bot_id, at in self.held_since.items()},
        )
