"""The write journal: database writes the engine could not make survive a stop and a crash.

While the database is unavailable (down, locked, its file deleted, replaced or read-only)
every write the recorder holds is appended to a local JSONL file, fsynced, and so is every
write made while it stays away, and whatever is left when the engine stops. At the next
start the journal is replayed before recovery reads the bots' books: a position closed
during the outage is read as closed, never resumed as open and closed a second time.

Replay is idempotent through a watermark: while the journal holds writes, every transaction
of the recorder also records, in the same transaction, the journal's generation (one per
engine run) and the last sequence number it applied (engine_controls row
`journal:<file name>`). Replay applies only the entries after it, then moves it and empties
the file; a crash anywhere in between replays nothing twice. A torn last line (a kill in the
middle of an append) is ignored; any other line that cannot be read, or a write the database
refuses, is kept in `<journal>.rejected.jsonl` with a log line, never dropped silently.

Where: beside a SQLite file (`<database>.journal.jsonl`), or in `journal_dir` when set
(for PostgreSQL, one file per engine id). Costs nothing while the database is available.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from live.engine.config import EngineConfig
from live.engine.events import EngineEvent
from live.engine.persistence import (
    BotBatch,
    BotStatusWrite,
    BotStrategyWrite,
    ControlWrite,
    EventWrite,
    FillRecord,
    ShadowWrite,
    StrategySourceWrite,
    Write,
    apply_writes,
)
from live.engine.single_engine import sqlite_file_path
from tradepipe.db import BotStatus, EngineControl, mask_url
from tradepipe.db.shadow import ShadowPositionRecord, ShadowRecord
from tradepipe.orders import Position, StateError, event_from_dict, event_to_dict
from tradepipe.orders.serialise import build, record_to_dict

__all__ = [
    "JournalEntry",
    "ReplayReport",
    "WriteJournal",
    "journal_path",
    "read_watermark",
    "write_from_dict",
    "write_to_dict",
]

log = logging.getLogger(__name__)


def journal_path(config: EngineConfig) -> Path:
    """Beside the SQLite file, or `journal_dir`/<file>; PostgreSQL: one file per engine."""
    database = sqlite_file_path(config.database_url)
    if database is not None:
        folder = config.journal_dir or database.parent
        return folder / f"{database.name}.journal.jsonl"
    folder = config.journal_dir or Path("var") / "journal"
    url_key = hashlib.sha256(mask_url(config.database_url).encode()).hexdigest()[:12]
    return folder / f"{config.engine_id or 'engine'}-{url_key}.journal.jsonl"


# -- writes to plain data and back --------------------------------------------------------


def write_to_dict(write: Write) -> dict[str, Any]:
    if isinstance(write, BotBatch):
        return {
            "type": "bot_batch",
            "bot_id": write.bot_id,
            "bot": write.bot,
            "events": [event_to_dict(event) for event in write.events],
            "positions": [position.to_dict() for position in write.positions],
            "fills": [record_to_dict(fill) for fill in write.fills],
            "book": write.book,
            "strategy_state": write.strategy_state,
            "strategy_name": write.strategy_name,
            "strategy_hash": write.strategy_hash,
            "reference_price": write.reference_price,
            "exchange_ids": dict(write.exchange_ids),
            "epoch": write.epoch,
        }
    if isinstance(write, BotStatusWrite):
        return {
            "type": "bot_status",
            "bot_id": write.bot_id,
            "status": write.status.value,
            "last_error": write.last_error,
            "epoch": write.epoch,
            "disable": write.disable,
        }
    if isinstance(write, BotStrategyWrite):
        return {
            "type": "bot_strategy",
            "bot_id": write.bot_id,
            "strategy": write.strategy,
            "epoch": write.epoch,
        }
    if isinstance(write, EventWrite):
        event = write.event
        return {
            "type": "event",
            "kind": event.kind,
            "message": event.message,
            "bot": event.bot,
            "data": dict(event.data),
            "at": event.at.isoformat(),
        }
    if isinstance(write, StrategySourceWrite):
        return {
            "type": "strategy_source",
            "name": write.name,
            "content_hash": write.content_hash,
            "source": base64.b64encode(write.source).decode("ascii"),
        }
    if isinstance(write, ShadowWrite):
        record = write.record
        body = record_to_dict(record)
        body["positions"] = [record_to_dict(position) for position in record.positions]
        return {"type": "shadow", "record": body}
    return {
        "type": "control",
        "name": write.name,
        "value": write.value,
        "updated_by": write.updated_by,
    }


def write_from_dict(data: dict[str, Any]) -> Write:
    """The write `write_to_dict` made; StateError naming what does not fit."""
    body = dict(data)
    kind = body.pop("type", None)
    if kind == "bot_batch":
        return build(
            BotBatch,
            body,
            {
                "events": lambda items: tuple(event_from_dict(item) for item in items),
                "positions": lambda items: tuple(Position.from_dict(item) for item in items),
                "fills": lambda items: tuple(build(FillRecord, item, {}) for item in items),
            },
        )
    if kind == "bot_status":
        return build(BotStatusWrite, body, {"status": BotStatus})
    if kind == "bot_strategy":
        return build(BotStrategyWrite, body, {})
    if kind == "event":
        event = build(EngineEvent, body, {"at": datetime.fromisoformat})
        return EventWrite(event)
    if kind == "control":
        return build(ControlWrite, body, {})
    if kind == "strategy_source":
        return build(StrategySourceWrite, body, {"source": base64.b64decode})
    if kind == "shadow":
        positions = {
            "positions": lambda items: tuple(
                build(ShadowPositionRecord, item, {}) for item in items
            )
        }
        return ShadowWrite(build(ShadowRecord, dict(body.get("record") or {}), positions))
    raise StateError(f"journal: unknown write type {kind!r}")


# -- the file -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalEntry:
    generation: str
    seq: int
    write: Write


@dataclass(frozen=True, slots=True)
class ReplayReport:
    applied: int
    skipped: int  # in the database already (before the watermark)
    rejected: int  # unreadable or refused: kept in the rejected file


class WriteJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.generation = uuid.uuid4().hex  # this run's; replay reads earlier ones
        self.watermark_name = f"journal:{path.name}"[:64]

    @property
    def rejected_path(self) -> Path:
        return self.path.with_name(self.path.name.removesuffix(".jsonl") + ".rejected.jsonl")

    def append(self, entries: Sequence[tuple[int, Write]]) -> None:
        """Append `(seq, write)` pairs and fsync; raises OSError (the caller reports it)."""
        lines = b"".join(
            json.dumps(
                {"generation": self.generation, "seq": seq, "write": write_to_dict(write)},
                separators=(",", ":"),
            ).encode()
            + b"\n"
            for seq, write in entries
        )
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as file:
            file.write(lines)
            file.flush()
            os.fsync(file.fileno())
        if created:  # the new file's name must survive a power cut too
            _fsync_directory(self.path.parent)

    def watermark(self, seq: int) -> ControlWrite:
        """The write that records, in a transaction, that `seq` of this run is applied."""
        value = {"generation": self.generation, "seq": seq}
        return ControlWrite(self.watermark_name, value, "engine write journal")

    def read(self) -> list[JournalEntry]:
        """The entries in order; unreadable lines go to the rejected file (a torn last line,
        from a kill in the middle of an append, is only logged)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        entries: list[JournalEntry] = []
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                entries.append(
                    JournalEntry(
                        str(item["generation"]), int(item["seq"]), write_from_dict(item["write"])
                    )
                )
            except (ValueError, KeyError, TypeError) as error:
                torn = number == len(lines) and not raw.endswith(b"\n")
                if torn:
                    log.warning("journal %s: last line torn (a stop mid-write), ignored", self.path)
                    continue
                self.reject(line, f"line {number} unreadable: {error}")
        return entries

    def reject(self, line: bytes, reason: str) -> None:
        log.error(
            "journal %s: %s; kept in %s",
            self.path,
            reason,
            self.rejected_path,
            extra={"line": line[:200]},
        )
        with self.rejected_path.open("ab") as file:
            file.write(line.rstrip(b"\n") + b"\n")
            file.flush()
            os.fsync(file.fileno())

    def clear(self) -> None:
        """Empty the file (everything in it is applied, the watermark says so)."""
        if not self.path.exists():
            return
        with self.path.open("r+b") as file:
            file.truncate(0)
            file.flush()
            os.fsync(file.fileno())


def read_watermark(session: Session, journal: WriteJournal) -> tuple[str, int] | None:
    row = session.get(EngineControl, journal.watermark_name)
    if row is None or not isinstance(row.value, dict):
        return None
    return str(row.value.get("generation")), int(row.value.get("seq", 0))


def replay(
    journal: WriteJournal,
    session_scope: Any,
    *,
    is_unavailable: Any,
    owner: str | None = None,
) -> ReplayReport:
    """Apply the journal's entries the database lacks, then empty it (synchronous).

    `session_scope()` opens a transaction; an error for which `is_unavailable(error)` is
    true propagates (the start waits for the database and replays again). With `owner` (an
    engine sharing bots through leases) a bot's writes are fenced as live ones are: those
    made under an epoch the engine no longer holds (its bot was taken over meanwhile) are
    refused and kept in the rejected file, never applied."""
    entries = journal.read()
    if not entries:
        journal.clear()
        return ReplayReport(0, 0, 0)
    with session_scope() as session:
        mark = read_watermark(session, journal)
    todo = [
        entry
        for entry in entries
        if mark is None or entry.generation != mark[0] or entry.seq > mark[1]
    ]
    rejected = 0

    def keep_rejected(entry: JournalEntry, reason: str) -> None:
        nonlocal rejected
        rejected += 1
        line = json.dumps(
            {"generation": entry.generation, "seq": entry.seq, "write": write_to_dict(entry.write)}
        ).encode()
        journal.reject(line, reason)

    def apply(group: list[JournalEntry]) -> list[JournalEntry]:
        """Apply `group` in one transaction; the entries the lease fence refused."""
        last = group[-1]
        with session_scope() as session:
            refused = apply_writes(session, [entry.write for entry in group], owner)
            apply_writes(session, [_watermark_of(journal, last)])
        return [group[index] for index in refused]

    fenced: list[JournalEntry] = []

    if todo:
        try:
            fenced = apply(todo)
        except Exception as error:
            if is_unavailable(error):
                raise
            for entry in todo:  # find the writes the database refuses, keep the others
                try:
                    fenced.extend(apply([entry]))
                except Exception as single:
                    if is_unavailable(single):
                        raise
                    keep_rejected(entry, f"write refused by the database: {single}")
    for entry in fenced:
        keep_rejected(entry, f"write refused: lease of bot {_bot_of(entry)} not held by {owner}")
    journal.clear()
    report = ReplayReport(len(todo) - rejected, len(entries) - len(todo), rejected)
    log.warning(
        "journal %s replayed: %d writes applied, %d in the database already, %d rejected",
        journal.path,
        report.applied,
        report.skipped,
        report.rejected,
        extra={"applied": report.applied, "skipped": report.skipped},
    )
    return report


def _bot_of(entry: JournalEntry) -> object:
    return getattr(entry.write, "bot_id", "?")


def _watermark_of(journal: WriteJournal, entry: JournalEntry) -> ControlWrite:
    value = {"generation": entry.generation, "seq": entry.seq}
    return ControlWrite(journal.watermark_name, value, "engine write journal")


def _fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
