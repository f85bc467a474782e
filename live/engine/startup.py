"""The two steps of the engine's start that read the world before it trades: the database
made ready (migrated, the last run's write journal replayed, the bots read), waiting for it
while it is not there; and the reconciliation with the venues announced as one event."""

from __future__ import annotations

import asyncio
import logging

from live.engine.config import EngineConfig
from live.engine.core import TradingCore
from live.engine.journal import WriteJournal, replay
from live.engine.leases import LeaseKeeper
from live.engine.recorder import EngineDatabase, Recorder, is_unavailable
from live.engine.recovery import BotsSnapshot, ReconcileReport, read_snapshot
from live.engine.takeovers import bot_ids
from tradepipe.db import DatabaseUrlError, upgrade_database

__all__ = ["announce_reconciled", "wait_for_database"]

log = logging.getLogger(__name__)


async def wait_for_database(
    config: EngineConfig,
    database: EngineDatabase,
    journal: WriteJournal,
    recorder: Recorder,
    leases: LeaseKeeper,
) -> BotsSnapshot:
    """Migrate (idempotent), replay the write journal of the last run (before anything
    reads a book: a position closed during an outage must be read closed), watch the
    SQLite file, and read the bots; retrying with backoff while the database is
    unreachable; a URL that can never work is an error at once."""
    attempt = 0
    while True:
        try:
            await asyncio.to_thread(upgrade_database, config.database_url)
            await asyncio.to_thread(
                replay,
                journal,
                database.session,
                is_unavailable=is_unavailable,
                owner=recorder.owner,
            )
            await asyncio.to_thread(database.watch_file)
            snapshot = await recorder.read(read_snapshot)
            if leases.enabled:
                await leases.renew(recorder.read, bot_ids(snapshot))
            return snapshot
        except DatabaseUrlError:
            raise
        except Exception as error:
            attempt += 1
            delay = config.db_retry_delay(attempt)
            log.error(
                "database not ready (%s); retrying in %.1f s",
                error,
                delay,
                extra={"attempt": attempt},
            )
            await asyncio.sleep(delay)


def announce_reconciled(core: TradingCore, engine_id: str, report: ReconcileReport) -> None:
    """`engine_reconciled`: what the start resumed, sent again and cancelled."""
    core.emit(
        "engine_reconciled",
        f"engine {engine_id}: {len(report.resumed)} positions resumed, "
        f"{len(report.resent)} orders sent again, {len(report.orphans)} unknown cancelled",
        data={
            "engine_id": engine_id,
            "resumed": list(report.resumed),
            "resent": list(report.resent),
            "cancels": list(report.cancels),
            "orphans": list(report.orphans),
            "unknown_orders": list(report.unknown_orders),
            "unknown_fills": list(report.unknown_fills),
            "bots": sorted(core.bots),
        },
    )
