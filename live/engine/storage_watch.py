"""The SQLite file under a running engine: deleted, replaced or made read-only is an outage.

SQLite keeps writing through the descriptors it has open: to a file deleted under it (all
gone at exit), to the old file when another was moved in its place, or, as root, to a file
whose mode says read-only. So before every transaction (and read) the engine compares the
file at its path with the one it started on, by device and inode, and checks its write bits
(mode bits, because root passes every `os.access` check). A fault raises `StorageFaultError`,
a `DatabaseUnavailableError`, so the recorder takes its usual outage path: writes queued (and
journaled, live/engine/journal.py), the engine degraded, no new entries, exits still sent.
One `os.stat` per transaction: microseconds.

A read-only file is a fault for as long as it lasts. A deleted or replaced file is a fault
until the engine restarts: the file it wrote is gone from the path for good. So that none of
it is lost, the engine copies that file, through a connection it opened at start and kept
(which still reads the old file), to `<database>.rescued-<time>` beside it, and says so.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tradepipe.db import DatabaseUnavailableError

__all__ = ["SqliteFileWatch", "StorageFaultError"]

log = logging.getLogger(__name__)
WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


class StorageFaultError(DatabaseUnavailableError):
    """The database file is not the one the engine started on, or cannot be written."""


@dataclass(frozen=True, slots=True)
class _Identity:
    device: int
    inode: int


class SqliteFileWatch:
    """Watches one SQLite file; `arm` once the database is migrated, `check` before use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._identity: _Identity | None = None
        self._anchor: sqlite3.Connection | None = None
        self._lost: str | None = None  # deleted or replaced: sticky until restart
        self._rescue_tried = False
        self.rescued: Path | None = None
        self._lock = threading.Lock()  # reads and the writer check from different threads

    def arm(self) -> None:
        """Remember the file (device, inode) and keep a connection on it for a rescue."""
        info = os.stat(self.path)
        self._identity = _Identity(info.st_dev, info.st_ino)
        self._lost = None
        self._rescue_tried = False
        self.rescued = None
        if self._anchor is None:
            # read-only, never written through: only there to still read a deleted file
            anchor = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            anchor.execute("SELECT count(*) FROM sqlite_master").fetchall()
            self._anchor = anchor

    def check(self, *, writing: bool = True) -> None:
        """Raise StorageFaultError if the file is gone or another one, or (`writing`)
        read-only."""
        if self._identity is None:
            return
        with self._lock:
            if self._lost is None:
                self._lost = self._lost_reason()
            if self._lost is not None:
                # only the writer rescues, before its transaction: none is in flight then, so
                # the copy holds every commit made to the old file (a read noticing first
                # while a write commits would copy without it)
                if writing and not self._rescue_tried:
                    self._rescue_tried = True
                    self._rescue()
                raise StorageFaultError(self._lost)
            if not writing:
                return
            try:
                mode = os.stat(self.path).st_mode
            except OSError as error:
                message = f"database file {self.path} cannot be read: {error}"
                raise StorageFaultError(message) from None
            if not mode & WRITE_BITS or not os.access(self.path, os.W_OK):
                raise StorageFaultError(
                    f"database file {self.path} is read-only (mode {stat.filemode(mode)}): "
                    "writes are kept until it is writable again"
                )

    def _lost_reason(self) -> str | None:
        assert self._identity is not None
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return f"database file {self.path} was deleted"
        except OSError:
            return None  # unreadable is reported by the mode check, and may pass
        if (info.st_dev, info.st_ino) != (self._identity.device, self._identity.inode):
            return f"database file {self.path} was replaced by another file"
        return None

    def _rescue(self) -> None:
        """Copy the file the engine wrote (still open) beside the path, and say where."""
        assert self._lost is not None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.path.with_name(f"{self.path.name}.rescued-{stamp}")
        try:
            if self._anchor is None:
                raise OSError("no connection kept on the old file")
            copy = sqlite3.connect(target)
            try:
                self._anchor.backup(copy)
            finally:
                copy.close()
        except (OSError, sqlite3.Error) as error:
            self._lost += f"; its content could not be saved ({error})"
            log.error("%s", self._lost)
            return
        self.rescued = target
        self._lost += (
            f"; the engine writes nothing more until restarted; what it held is saved to "
            f"{target}: stop the engine, move that file to {self.path} (removing "
            f"{self.path.name}-wal and {self.path.name}-shm), start it again, and the writes "
            "since are replayed from the journal"
        )
        log.error("%s", self._lost, extra={"rescued": str(target)})

    def close(self) -> None:
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None
