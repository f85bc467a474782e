"""One engine per SQLite database: a second one refuses to start, naming the one running.

Two engines on one database both trade every bot (each takes its own entries and fills the
same positions' barriers), so for SQLite, which has no leases, the engine holds an exclusive
`flock` on a lock file beside the database for as long as it runs. The kernel releases the
lock when the process ends in any way (a SIGKILL included), so a crash never leaves a stale
lock behind; the file's content only tells the refused engine who holds it.

PostgreSQL databases take no lock here: engines sharing one share its bots through leases.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["EngineAlreadyRunningError", "SingleEngineLock", "sqlite_file_path", "sqlite_lock_path"]


class EngineAlreadyRunningError(RuntimeError):
    """Another engine holds this SQLite database."""


def sqlite_file_path(database_url: str) -> Path | None:
    """The file of a SQLite file database; None for PostgreSQL or an in-memory one."""
    url = make_url(database_url)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in {"", ":memory:"}:
        return None
    if database.startswith("file:"):
        database = database.removeprefix("file:").partition("?")[0]
    return Path(database).expanduser().resolve()


def sqlite_lock_path(database_url: str) -> Path | None:
    """The lock file of a SQLite file database; None for PostgreSQL or an in-memory one."""
    path = sqlite_file_path(database_url)
    return None if path is None else path.with_name(path.name + ".engine-lock")


class SingleEngineLock:
    """The exclusive hold of one engine on one SQLite database (a no-op for PostgreSQL)."""

    def __init__(self, database_url: str, engine_id: str) -> None:
        self.path = sqlite_lock_path(database_url)
        self.engine_id = engine_id
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, api_url: str | None = None) -> None:
        """Take the lock or raise EngineAlreadyRunningError naming its holder."""
        if self.path is None or self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read_holder(fd))
            os.close(fd)
            raise EngineAlreadyRunningError(
                f"another engine is running on the SQLite database {self.path.with_suffix('')}"
                f" ({holder}); SQLite serves one engine only: stop that engine first, or move "
                "the trading database to PostgreSQL to run several"
            ) from None
        holder_info = {
            "engine_id": self.engine_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "api_url": api_url,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder_info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor drops the flock


def _read_holder(fd: int) -> dict[str, object]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _describe(holder: dict[str, object]) -> str:
    if not holder:
        return "its details are not written yet"
    parts = [f"engine {holder.get('engine_id')}", f"pid {holder.get('pid')}"]
    parts.append(f"on {holder.get('host')}")
    parts.append(f"since {holder.get('started_at')}")
    if holder.get("api_url"):
        parts.append(f"API {holder['api_url']}")
    return ", ".join(parts)
