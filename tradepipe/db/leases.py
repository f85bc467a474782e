"""Bot leases: several engines on one PostgreSQL database, one owner per bot at any time.

An engine claims bots atomically: a bot never leased gets its row by `INSERT ... ON
CONFLICT DO NOTHING` (of two engines racing, exactly one inserts), an expired lease is
taken by locking its row (`FOR UPDATE SKIP LOCKED`, re-checking the expiry) and updating
it, and each takeover increments the bot's `epoch`. The owner renews its leases with its
heartbeat; a bot moves only when its owner stops renewing (it is gone) or gives it up
(over capacity, or a graceful stop). Times are the database server's clock, never an
engine's own, so engines on machines with skewed clocks still agree on who holds what.

Fencing: every bot write of an engine carries the epoch it held when the write was made,
and `leases_held` (in the writing transaction) refuses the write once another engine has
taken over. It locks the rows FOR KEY SHARE until the transaction ends: a takeover, which
locks the row FOR UPDATE (SKIP LOCKED) first, cannot take a bot under a write in flight,
while the owner's renewal (FOR NO KEY UPDATE, an update of the expiry) never waits for its
own engine's writes. With FOR SHARE it did: under load a long write transaction held the
renewal past the statement timeout and the leases lapsed, or the two deadlocked.

Lock order: every statement here that locks several lease rows locks them in `bot_id`
order, so two that do conflict wait for each other but never deadlock.
SQLite has no leases: one engine owns every bot there (live/engine/single_engine.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from tradepipe.db.engine_state import BotLease
from tradepipe.db.models import Bot

__all__ = [
    "LeaseView",
    "claim_leases",
    "lease_holds",
    "leases_held",
    "list_leases",
    "release_leases",
]


@dataclass(frozen=True, slots=True)
class LeaseView:
    bot_id: int
    bot: str
    owner: str
    epoch: int
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
    now: datetime  # the database's clock when read: ages are measured against it

    @property
    def expired(self) -> bool:
        return self.expires_at <= self.now

    @property
    def held_seconds(self) -> float:
        return (self.now - self.acquired_at).total_seconds()

    @property
    def expires_in_seconds(self) -> float:
        return (self.expires_at - self.now).total_seconds()

    @property
    def renewed_seconds_ago(self) -> float:
        return (self.now - self.renewed_at).total_seconds()


def claim_leases(
    session: Session,
    owner: str,
    bot_ids: Iterable[int],
    *,
    ttl_seconds: float,
    max_bots: int,
) -> dict[int, int]:
    """Renew `owner`'s leases, give up those over `max_bots`, then take free or expired
    ones among `bot_ids` up to `max_bots`; the bots `owner` holds now -> their epochs."""
    term = _Term(owner, ttl_seconds)
    owned = _renew(session, term, max_bots)
    wanted = sorted(set(bot_ids) - set(owned))
    room = max_bots - len(owned)
    if room <= 0 or not wanted:
        return owned
    # Never wait on a lease row another transaction holds (a live owner renewing, a writer
    # checking its fence, a rival claiming): skip it. Waiting is how claims deadlock.
    leased = dict(
        session.execute(
            sa.select(BotLease.bot_id, BotLease.expires_at < term.now).where(
                BotLease.bot_id.in_(wanted)
            )
        ).all()
    )
    owned.update(_take_over(session, term, [i for i, gone in leased.items() if gone], room))
    for bot_id in (i for i in wanted if i not in leased):  # never leased: epoch 1
        if len(owned) >= max_bots:
            break
        epoch = _claim_new(session, term, bot_id)
        if epoch is not None:
            owned[bot_id] = epoch
    return owned


class _Term:
    """Who claims, and the database clock's now and expiry (evaluated in each statement)."""

    def __init__(self, owner: str, ttl_seconds: float) -> None:
        self.owner = owner
        self.now = sa.func.clock_timestamp()
        self.expiry = self.now + sa.literal(timedelta(seconds=ttl_seconds))


def _renew(session: Session, term: _Term, max_bots: int) -> dict[int, int]:
    """The owner's leases renewed, those over `max_bots` given up: bot id -> epoch."""
    session.execute(  # FOR NO KEY UPDATE in bot id order: see the module's docstring
        sa.select(BotLease.bot_id)
        .where(BotLease.owner == term.owner)
        .order_by(BotLease.bot_id)
        .with_for_update(key_share=True)
    )
    renewed = session.execute(
        sa.update(BotLease)
        .where(BotLease.owner == term.owner)
        .values(renewed_at=term.now, expires_at=term.expiry)
        .returning(BotLease.bot_id, BotLease.epoch)
    )
    owned = {bot_id: epoch for bot_id, epoch in renewed}
    excess = sorted(owned)[max_bots:]
    if excess:  # capacity lowered: the excess goes to the other engines
        _expire(session, term.owner, excess)
        for bot_id in excess:
            del owned[bot_id]
    return owned


def _take_over(session: Session, term: _Term, candidates: list[int], room: int) -> dict[int, int]:
    """Up to `room` of the `candidates` whose lease is still expired once locked (rows
    another transaction holds are skipped), each under the next epoch."""
    expired = session.scalars(
        sa.select(BotLease.bot_id)
        .where(BotLease.bot_id.in_(candidates))
        .where(BotLease.expires_at < term.now)
        .order_by(BotLease.bot_id)
        .limit(room)
        .with_for_update(skip_locked=True)
    ).all()
    taken: dict[int, int] = {}
    for bot_id in expired:
        epoch = session.scalar(
            sa.update(BotLease)
            .where(BotLease.bot_id == bot_id)
            .values(
                owner=term.owner,
                epoch=BotLease.epoch + 1,
                acquired_at=term.now,
                renewed_at=term.now,
                expires_at=term.expiry,
            )
            .returning(BotLease.epoch)
        )
        if epoch is not None:
            taken[bot_id] = epoch
    return taken


def _claim_new(session: Session, term: _Term, bot_id: int) -> int | None:
    """The first lease of `bot_id` (epoch 1), or None: a rival inserted it first, or the
    bot was deleted meanwhile (which fails only this claim)."""
    claim = (
        pg_insert(BotLease)
        .values(
            bot_id=bot_id,
            owner=term.owner,
            epoch=1,
            acquired_at=term.now,
            renewed_at=term.now,
            expires_at=term.expiry,
        )
        .on_conflict_do_nothing(index_elements=[BotLease.bot_id])
        .returning(BotLease.epoch)
    )
    with session.begin_nested():
        try:
            return session.scalar(claim)
        except sa.exc.IntegrityError:
            return None


def release_leases(session: Session, owner: str, bot_ids: Iterable[int] | None = None) -> None:
    """Let another engine take `owner`'s bots (all, or `bot_ids`) at once; the epoch stays,
    so the next owner's is higher."""
    ids = None if bot_ids is None else list(bot_ids)
    _expire(session, owner, ids)


def _expire(session: Session, owner: str, bot_ids: list[int] | None) -> None:
    statement = sa.update(BotLease).where(BotLease.owner == owner)
    if bot_ids is not None:
        statement = statement.where(BotLease.bot_id.in_(bot_ids))
    session.execute(statement.values(expires_at=sa.func.clock_timestamp()))


def lease_holds(session: Session, bot_id: int, owner: str, epoch: int | None) -> bool:
    """Does `owner` still hold `bot_id` at `epoch`? Locks the lease row until the end of the
    transaction, so no takeover can slip between this check and the writes it guards."""
    return (bot_id, epoch) in leases_held(session, owner, [(bot_id, epoch)])


def leases_held(
    session: Session, owner: str, wanted: Iterable[tuple[int, int | None]]
) -> set[tuple[int, int | None]]:
    """Which of the (bot id, epoch) pairs `owner` still holds, the lease rows of those bots
    locked FOR KEY SHARE in `bot_id` order until the end of the transaction (one statement,
    at the start of a writing transaction: see the module's docstring)."""
    pairs = set(wanted)
    bot_ids = sorted({bot_id for bot_id, epoch in pairs if epoch is not None})
    if not bot_ids:
        return set()
    rows = session.execute(
        sa.select(BotLease.bot_id, BotLease.epoch)
        .where(BotLease.bot_id.in_(bot_ids), BotLease.owner == owner)
        .order_by(BotLease.bot_id)
        .with_for_update(read=True, key_share=True)
    )
    current: Mapping[int, int] = {bot_id: epoch for bot_id, epoch in rows}
    return {(bot_id, epoch) for bot_id, epoch in pairs if current.get(bot_id) == epoch}


def list_leases(session: Session) -> list[LeaseView]:
    """Every lease, by owner then bot, with the database's current time to judge ages."""
    now = session.scalar(sa.select(sa.func.now()))
    assert now is not None
    rows = session.execute(
        sa.select(BotLease, Bot.name)
        .join(Bot, Bot.id == BotLease.bot_id)
        .order_by(BotLease.owner, Bot.name)
    )
    return [
        LeaseView(
            lease.bot_id,
            name,
            lease.owner,
            lease.epoch,
            lease.acquired_at,
            lease.renewed_at,
            lease.expires_at,
            now if now.tzinfo else now.replace(tzinfo=lease.expires_at.tzinfo),
        )
        for lease, name in rows
    ]
