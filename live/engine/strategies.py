"""The strategies the engine may run: the last version of each file that passed validation.

Bots name their strategy by file stem (`strategies/<name>.py`). `scan()` compares the folder
with what the engine knows and returns what changed since the last scan, by content hash:
a new file, an edit that validates (a new version), an edit that does not (the previous
version stays the one bots run), a deleted file. Each new content is validated once
(`tradepipe.strategy.preflight`: executed in the validation process, smoke-run within a
budget against the configs of the bots that use it) and then loaded here; a content that
failed is remembered by its hash and not run again.

The engine compares with its own memory, not with the registry table: another writer (the
strategy_sync DAG, `tradepipe strategies sync`) may have recorded an edit first, and the
engine must still reload its bots. The registry sync runs after each scan through `load`,
so the table and the engine agree on what is valid without executing anything twice.

A file that disappears is only declared removed once it has stayed missing for
`removal_grace_seconds`: editors that save by deleting and re-creating (or renaming a
temporary file over it) leave it missing for a moment, and a deleted strategy moves its
bots to the default strategy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tradepipe.botconfig import BotConfig
from tradepipe.enums import StrategyStatus
from tradepipe.strategy import LoadedStrategy, StrategyLoadError, content_hash
from tradepipe.strategy.loader import load_strategy_source
from tradepipe.strategy.preflight import check_strategy_source
from tradepipe.strategy.registry_sync import (
    StrategySyncError,
    SyncedStrategy,
    SyncReport,
    strategy_files,
)

__all__ = ["StrategyChange", "StrategyChangeKind", "StrategyInfo", "StrategyLibrary"]

# check(source, path, configs): raises StrategyLoadError for a version that may not run
Check = Callable[[bytes, Path, Mapping[str, BotConfig]], object]


class StrategyChangeKind(StrEnum):
    ADDED = "added"  # a new file (or a removed one back) that validates
    EDITED = "edited"  # new content that validates: the bots using it reload
    INVALID = "invalid"  # new content that does not: the previous version keeps running
    REMOVED = "removed"  # the file is gone: its bots fall back to the default strategy


@dataclass(frozen=True, slots=True)
class StrategyChange:
    kind: StrategyChangeKind
    name: str
    content_hash: str
    loaded: LoadedStrategy | None = None  # the version to run (added, edited)
    error: StrategyLoadError | None = None  # why the new content may not run (invalid)


@dataclass(frozen=True, slots=True)
class StrategyInfo:
    """What the API shows of one strategy."""

    name: str
    status: StrategyStatus
    content_hash: str  # the version bots run (the broken file's, if none ever validated)
    version_count: int  # distinct contents that validated (the registry's count)
    error: str | None
    error_line: int | None
    file_path: str
    class_name: str
    bots: tuple[str, ...]


@dataclass(slots=True)
class _Known:
    path: Path
    seen_hash: str  # the content last scanned, valid or not
    running: LoadedStrategy | None  # the last version that validated
    error: StrategyLoadError | None = None  # set while the current content is invalid
    missing_since: float | None = None
    removed: bool = False


class StrategyLibrary:
    def __init__(
        self,
        directory: Path,
        *,
        check: Check | None = None,
        removal_grace_seconds: float = 0.5,
        budget_seconds: float | None = None,
    ) -> None:
        self.directory = directory
        self.removal_grace_seconds = removal_grace_seconds
        self._check = check or (
            lambda source, path, configs: check_strategy_source(
                source, path, configs=configs, budget_seconds=budget_seconds
            )
        )
        self._known: dict[str, _Known] = {}
        self._loaded: dict[tuple[str, str], LoadedStrategy] = {}
        self._failed: dict[tuple[str, str], StrategyLoadError] = {}
        self._registry: dict[str, SyncedStrategy] = {}
        # name -> (running version, error, removed): what `current` answers (see publish)
        self._published: dict[
            str, tuple[LoadedStrategy | None, StrategyLoadError | None, bool]
        ] = {}
        self._lock = threading.Lock()  # scans run in a worker thread, one at a time

    # -- what bots run -----------------------------------------------------------------------

    def path_of(self, name: str) -> Path:
        if not name or Path(name).name != name or name.startswith((".", "_")):
            raise StrategyLoadError(self.directory / name, "not a strategy name (a file stem)")
        return self.directory / f"{name}.py"

    def current(self, name: str) -> LoadedStrategy:
        """The version of `name` bots run now; StrategyLoadError (file:line: message) when
        there is none: never scanned, removed, or no version ever validated. What the last
        `publish()` made visible, never a scan still running in its thread."""
        path = self.path_of(name)
        published = self._published.get(name)
        if published is None:
            raise StrategyLoadError(path, "no such strategy file")
        running, error, removed = published
        if removed:
            raise StrategyLoadError(path, "the strategy file was deleted")
        if running is None:
            assert error is not None
            raise error
        return running

    def publish(self) -> None:
        """Make the last scan's verdicts the ones bots see. Called in the engine's loop
        together with applying the scan's changes, so that a bots poll in between never
        sees a deletion (or an edit) before its bots were moved."""
        self._published = {
            name: (known.running, known.error, known.removed) for name, known in self._known.items()
        }

    def pending_removal(self) -> float | None:
        """Seconds until a missing file may be declared removed (None: nothing missing)."""
        waits = [
            self.removal_grace_seconds - (time.monotonic() - known.missing_since)
            for known in self._known.values()
            if known.missing_since is not None and not known.removed
        ]
        return max(0.0, min(waits)) if waits else None

    # -- the folder ------------------------------------------------------------------------

    def scan(self, configs_for: Callable[[str], Mapping[str, BotConfig]]) -> list[StrategyChange]:
        """Compare the folder with the last scan; validate new contents. Blocking (file reads,
        the validation process): call it from a worker thread."""
        with self._lock:
            if not self.directory.is_dir():
                # a mistyped or unmounted folder must not move every bot to the default
                raise StrategySyncError(f"strategies folder {self.directory} does not exist")
            changes: list[StrategyChange] = []
            present = set()
            for path in strategy_files(self.directory):
                try:
                    source = path.read_bytes()
                except OSError:
                    continue  # replaced while listing: the next event brings it back
                present.add(path.stem)
                change = self._scan_file(path, source, configs_for)
                if change is not None:
                    changes.append(change)
            now = time.monotonic()
            for name, known in self._known.items():
                if name in present or known.removed:
                    continue
                if known.missing_since is None:
                    known.missing_since = now
                if now - known.missing_since >= self.removal_grace_seconds:
                    known.removed = True
                    known.error = None
                    changes.append(
                        StrategyChange(StrategyChangeKind.REMOVED, name, known.seen_hash)
                    )
            return changes

    def _scan_file(
        self,
        path: Path,
        source: bytes,
        configs_for: Callable[[str], Mapping[str, BotConfig]],
    ) -> StrategyChange | None:
        name = path.stem
        digest = content_hash(source)
        known = self._known.get(name)
        if known is not None:
            known.missing_since = None
            known.path = path
            if digest == known.seen_hash and not known.removed:
                return None
        try:
            loaded = self._load(source, path, configs_for(name))
        except StrategyLoadError as error:
            if known is None:
                self._known[name] = _Known(path, digest, None, error)
            else:
                known.seen_hash, known.error, known.removed = digest, error, False
            return StrategyChange(StrategyChangeKind.INVALID, name, digest, error=error)
        if known is None or known.removed or known.running is None:
            kind = StrategyChangeKind.ADDED
        else:
            kind = StrategyChangeKind.EDITED
        self._known[name] = _Known(path, digest, loaded)
        return StrategyChange(kind, name, digest, loaded=loaded)

    def _load(self, source: bytes, path: Path, configs: Mapping[str, BotConfig]) -> LoadedStrategy:
        key = (path.stem, content_hash(source))
        loaded = self._loaded.get(key)
        if loaded is not None:
            return loaded
        failure = self._failed.get(key)
        if failure is not None:
            raise failure
        try:
            self._check(source, path, configs)
            loaded = load_strategy_source(source, path)
        except StrategyLoadError as error:
            self._failed[key] = error
            raise
        self._loaded[key] = loaded
        return loaded

    def load_for_registry(self, source: bytes, path: Path) -> LoadedStrategy:
        """The registry sync's loader: the same verdicts as the scans, nothing run twice."""
        return self._load(source, path, {})

    # -- the registry ------------------------------------------------------------------------

    def recorded(self, report: SyncReport) -> None:
        """Remember the registry rows a sync left (version counts for `info`)."""
        for row in (*report.added, *report.edited, *report.invalid, *report.removed):
            self._registry[row.name] = row
        for row in report.unchanged:
            self._registry[row.name] = row

    def info(self, bots_by_strategy: Mapping[str, tuple[str, ...]]) -> list[StrategyInfo]:
        """Every strategy the engine knows, by name."""
        return [self._info(name, bots_by_strategy.get(name, ())) for name in sorted(self._known)]

    def info_of(self, name: str, bots: tuple[str, ...]) -> StrategyInfo | None:
        return self._info(name, bots) if name in self._known else None

    def _info(self, name: str, bots: tuple[str, ...]) -> StrategyInfo:
        known = self._known[name]
        row = self._registry.get(name)
        if known.removed:
            status = StrategyStatus.REMOVED
        elif known.error is not None:
            status = StrategyStatus.INVALID
        else:
            status = StrategyStatus.VALID
        running = known.running
        return StrategyInfo(
            name=name,
            status=status,
            content_hash=running.content_hash if running else known.seen_hash,
            version_count=row.version_count if row is not None else int(running is not None),
            error=str(known.error) if known.error is not None else None,
            error_line=known.error.line if known.error is not None else None,
            file_path=str(known.path),
            class_name=running.class_name if running else "",
            bots=bots,
        )
