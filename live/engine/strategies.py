"""Strategy files by name, loaded once per content hash.

Bots name their strategy by file stem (`strategies/<name>.py`). The engine asks the library
again on every bot poll; the file's bytes are read and hashed each time (a few kB), and a
strategy is executed only when its bytes are new, so an edited file is picked up on the
next poll and an unchanged one costs no import. A file that fails to load is remembered by
its hash too: it is reported once, not re-executed every poll, and the bots that used the
previous version keep running it.
"""

from __future__ import annotations

from pathlib import Path

from tradepipe.strategy import LoadedStrategy, StrategyLoadError, content_hash
from tradepipe.strategy.loader import load_strategy_source

__all__ = ["StrategyLibrary"]


class StrategyLibrary:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._loaded: dict[tuple[str, str], LoadedStrategy] = {}
        self._failed: dict[tuple[str, str], StrategyLoadError] = {}

    def path_of(self, name: str) -> Path:
        if not name or Path(name).name != name or name.startswith("."):
            raise StrategyLoadError(self.directory / name, "not a strategy name (a file stem)")
        return self.directory / f"{name}.py"

    def load(self, name: str) -> LoadedStrategy:
        """The strategy `name` as its file is now. Raises StrategyLoadError (missing file,
        syntax error, invalid class...), naming the file and line."""
        path = self.path_of(name)
        try:
            source = path.read_bytes()
        except OSError as error:
            raise StrategyLoadError(path, f"cannot read: {error.strerror or error}") from None
        key = (name, content_hash(source))
        loaded = self._loaded.get(key)
        if loaded is not None:
            return loaded
        failure = self._failed.get(key)
        if failure is not None:
            raise failure
        try:
            loaded = load_strategy_source(source, path)
        except StrategyLoadError as error:
            self._failed[key] = error
            raise
        self._loaded[key] = loaded
        return loaded
