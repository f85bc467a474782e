"""Reconcile the strategy registry (the `strategies` table) with the strategies folder.

One implementation for every caller: the `strategy_sync` DAG, the live engine's watcher and
`tradepipe strategies sync` all call `sync_strategies`, so the registry means the same thing
whoever wrote it last. The folder is the truth; the table is what the dashboard, the API
and bot creation read.

What a row says after a sync (one row per file stem, never deleted, so bots that name a
strategy and their trading history keep a registry entry to point at):
- `valid`: the file loads. `content_hash` is its sha256, `version_count` counts the distinct
  contents that loaded (an edit that loads is a new version).
- `invalid`: the file fails to load. `error` is the loader's `file:line: message`,
  `error_line` the line. `content_hash` stays the last version that loaded (the one running
  bots keep), or the broken file's hash when no version ever loaded (`version_count` 0).
- `removed`: the file is gone. The row keeps its last hash and count.

The report lists changes only, so re-running a sync on an unchanged folder changes no row
and reports everything as unchanged: callers may react to each change exactly once (the
engine reloads edited strategies, reports new failures, moves bots off removed ones).
A file that is still broken in the same way is unchanged, not reported again; its error is
on the row. Files whose name starts with "_" or "." are not strategies (helpers, editor
droppings) and are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tradepipe.botconfig import BotConfig, BotConfigError, parse_bot_config
from tradepipe.db.models import Bot as BotRow
from tradepipe.db.models import Strategy as StrategyRow
from tradepipe.enums import StrategyStatus
from tradepipe.strategy.loader import LoadedStrategy, StrategyLoadError, content_hash
from tradepipe.strategy.preflight import checked_loader

__all__ = [
    "StrategySyncError",
    "SyncReport",
    "SyncedStrategy",
    "bot_configs",
    "strategy_files",
    "sync_strategies",
]

# `load(source, path)`: the default validates each new content in the validation process
# (tradepipe.strategy.preflight) against the configs of the bots that use it, then loads
# it; the engine passes its own cached version of the same, so a sync executes each content
# at most once per engine.
Loader = Callable[[bytes, Path], LoadedStrategy]


class StrategySyncError(Exception):
    """The folder cannot be synced (it does not exist): nothing was changed."""


@dataclass(frozen=True, slots=True)
class SyncedStrategy:
    """A registry row as the sync left it."""

    name: str
    file_path: str
    class_name: str
    content_hash: str
    status: StrategyStatus
    version_count: int
    error: str | None = None
    error_line: int | None = None

    @classmethod
    def of(cls, row: StrategyRow) -> SyncedStrategy:
        return cls(
            name=row.name,
            file_path=row.file_path,
            class_name=row.class_name,
            content_hash=row.content_hash,
            status=row.status,
            version_count=row.version_count,
            error=row.error,
            error_line=row.error_line,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file_path": self.file_path,
            "class_name": self.class_name,
            "content_hash": self.content_hash,
            "status": self.status.value,
            "version_count": self.version_count,
            "error": self.error,
            "error_line": self.error_line,
        }


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one sync changed; every file and every known row is in exactly one list."""

    added: tuple[SyncedStrategy, ...] = ()  # new files that load (or a removed one back)
    edited: tuple[SyncedStrategy, ...] = ()  # new content that loads, or a broken one fixed
    invalid: tuple[SyncedStrategy, ...] = ()  # newly failing, or failing differently
    removed: tuple[SyncedStrategy, ...] = ()  # files deleted since the last sync
    unchanged: tuple[SyncedStrategy, ...] = ()  # including files still broken the same way

    @property
    def changed(self) -> bool:
        return bool(self.added or self.edited or self.invalid or self.removed)

    @property
    def valid(self) -> tuple[SyncedStrategy, ...]:
        """Every strategy that loads now, by name: what may be run or backtested."""
        rows = (*self.added, *self.edited, *self.unchanged)
        return tuple(
            sorted((r for r in rows if r.status is StrategyStatus.VALID), key=lambda r: r.name)
        )

    def summary(self) -> str:
        parts = []
        for label, rows in (
            ("added", self.added),
            ("edited", self.edited),
            ("invalid", self.invalid),
            ("removed", self.removed),
        ):
            if rows:
                parts.append(f"{label} {', '.join(row.name for row in rows)}")
        parts.append(f"{len(self.unchanged)} unchanged")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for XCom, events and the command line."""
        return {
            "added": [row.to_dict() for row in self.added],
            "edited": [row.to_dict() for row in self.edited],
            "invalid": [row.to_dict() for row in self.invalid],
            "removed": [row.to_dict() for row in self.removed],
            "unchanged": [row.name for row in self.unchanged],
            "valid": [row.name for row in self.valid],
        }


def sync_strategies(
    session: Session, strategies_dir: Path, *, load: Loader | None = None
) -> SyncReport:
    """Bring the registry in line with `strategies_dir` and say what changed.

    Writes through `session` and flushes; the caller commits (one transaction per sync).
    Two writers adding the same new strategy at once collide on the unique name: the
    loser's transaction fails and a retry finds the row. A missing folder raises
    StrategySyncError rather than marking every strategy removed: a mistyped path must
    not move every bot to the default strategy.
    """
    if not strategies_dir.is_dir():
        raise StrategySyncError(
            f"strategies folder {strategies_dir} does not exist: create it or set "
            "TRADEPIPE_STRATEGIES_DIR"
        )
    # Absolute paths in the registry: every caller (DAG worker, engine, command line) then
    # writes the same file_path, whatever its working directory.
    strategies_dir = strategies_dir.resolve()
    if load is None:
        load = checked_loader(lambda name: bot_configs(session, name))
    rows = {row.name: row for row in session.scalars(sa.select(StrategyRow))}
    buckets: dict[str, list[StrategyRow]] = {
        "added": [],
        "edited": [],
        "invalid": [],
        "removed": [],
        "unchanged": [],
    }
    seen: set[str] = set()
    for path in strategy_files(strategies_dir):
        seen.add(path.stem)
        row = rows.get(path.stem)
        outcome, row = _sync_file(session, path, row, load)
        buckets[outcome].append(row)
    for name, row in rows.items():
        if name in seen:
            continue
        if row.status is StrategyStatus.REMOVED:
            buckets["unchanged"].append(row)
        else:
            row.status = StrategyStatus.REMOVED
            row.error = row.error_line = None
            buckets["removed"].append(row)
    session.flush()
    return SyncReport(
        added=_sorted(buckets["added"]),
        edited=_sorted(buckets["edited"]),
        invalid=_sorted(buckets["invalid"]),
        removed=_sorted(buckets["removed"]),
        unchanged=_sorted(buckets["unchanged"]),
    )


def bot_configs(session: Session, strategy: str) -> dict[str, BotConfig]:
    """The configs of the bots that use `strategy`, by bot name (what its parameters must
    validate against). A stored config that no longer validates is the bot's problem, not
    the strategy's: it is left out here and reported when the bot starts."""
    configs: dict[str, BotConfig] = {}
    for bot in session.scalars(sa.select(BotRow).where(BotRow.strategy_name == strategy)):
        try:
            configs[bot.name] = parse_bot_config(bot.config, bot=bot.name)
        except BotConfigError:
            continue
    return configs


def strategy_files(directory: Path) -> list[Path]:
    """The strategy files of a folder: `*.py` not starting with "_" or "."."""
    return sorted(
        path
        for path in directory.glob("*.py")
        if path.is_file() and not path.name.startswith(("_", "."))
    )


def _sync_file(
    session: Session, path: Path, row: StrategyRow | None, load: Loader
) -> tuple[str, StrategyRow]:
    """Update (or create) the row of one file; returns the report bucket and the row."""
    try:
        source = path.read_bytes()
    except OSError as error:  # deleted or unreadable between listing and reading
        return _failed(session, path, row, StrategyLoadError(path, f"cannot read: {error}"), "")
    digest = content_hash(source)
    if row is not None and row.status is StrategyStatus.VALID and row.content_hash == digest:
        # Same bytes as the version that loaded: nothing to execute, nothing to change.
        row.file_path = str(path)
        return "unchanged", row
    try:
        loaded = load(source, path)
    except StrategyLoadError as error:
        return _failed(session, path, row, error, digest)

    if row is None:
        row = StrategyRow(
            name=path.stem,
            file_path=str(path),
            class_name=loaded.class_name,
            content_hash=digest,
            status=StrategyStatus.VALID,
            version_count=1,
        )
        session.add(row)
        return "added", row
    outcome = "added" if row.status is StrategyStatus.REMOVED else "edited"
    if row.content_hash != digest or row.version_count == 0:
        row.version_count += 1
    row.file_path = str(path)
    row.class_name = loaded.class_name
    row.content_hash = digest
    row.status = StrategyStatus.VALID
    row.error = row.error_line = None
    return outcome, row


def _failed(
    session: Session,
    path: Path,
    row: StrategyRow | None,
    error: StrategyLoadError,
    digest: str,
) -> tuple[str, StrategyRow]:
    message = str(error)
    if row is None:
        row = StrategyRow(
            name=path.stem,
            file_path=str(path),
            class_name="",
            content_hash=digest,
            status=StrategyStatus.INVALID,
            error=message,
            error_line=error.line,
            version_count=0,
        )
        session.add(row)
        return "invalid", row
    if row.status is StrategyStatus.INVALID and row.error == message:
        return "unchanged", row
    row.file_path = str(path)
    row.status = StrategyStatus.INVALID
    row.error = message
    row.error_line = error.line
    if row.version_count == 0:  # never loaded: the hash names the broken file
        row.content_hash = digest or row.content_hash
    return "invalid", row


def _sorted(rows: Iterable[StrategyRow]) -> tuple[SyncedStrategy, ...]:
    return tuple(SyncedStrategy.of(row) for row in sorted(rows, key=lambda row: row.name))
