"""Strategy files -> validated, content-hashed strategy classes.

A file is executed as a module of its own (`importlib.util.spec_from_file_location`); only
`Strategy` subclasses defined in that very file count (an imported base class does not),
and there must be exactly one. Every problem is a `StrategyLoadError` naming the file and,
where there is one, the line.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradepipe.strategy.api import (
    INTERFACE_VERSION,
    Strategy,
    StrategyParameterError,
    StrategyParameters,
)


class StrategyLoadError(Exception):
    """A strategy file that cannot be used; `str()` is `file:line: message`."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.line = line

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class LoadedStrategy:
    """A strategy class with where it came from. `name` is the file's stem."""

    name: str
    path: Path
    cls: type[Strategy[Any]]
    content_hash: str
    # the bytes that were hashed and executed: kept so this version can be recorded and
    # re-run later (tradepipe.db.strategy_sources), whatever happens to the file
    source: bytes = field(default=b"", repr=False, compare=False)

    @property
    def class_name(self) -> str:
        return self.cls.__name__

    def create(self, parameters: Mapping[str, Any] | None = None) -> Strategy[Any]:
        return self.cls.create(parameters)


def content_hash(source: bytes) -> str:
    """The strategy version: sha256 of the file's bytes."""
    return hashlib.sha256(source).hexdigest()


def load_strategy(path: Path) -> LoadedStrategy:
    """Load and validate the strategy in `path`."""
    try:
        source = path.read_bytes()
    except OSError as error:
        raise StrategyLoadError(path, f"cannot read: {error.strerror}") from None
    return load_strategy_source(source, path)


def load_strategy_source(source: bytes, path: Path) -> LoadedStrategy:
    """Load the strategy from `source` as if it were the file at `path` (the bytes a
    watcher has just read, so the hash always matches what was executed)."""
    digest = content_hash(source)
    module_name = f"tradepipe_strategy_{_identifier(path.stem)}_{digest[:16]}"
    module = _execute(source, path, module_name)
    found = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, Strategy)
        and value is not Strategy
        and value.__module__ == module_name
    ]
    if not found:
        raise StrategyLoadError(path, "defines no Strategy subclass")
    if len(found) > 1:
        names = ", ".join(sorted(cls.__name__ for cls in found))
        raise StrategyLoadError(
            path, f"defines {len(found)} strategy classes ({names}): one per file"
        )
    cls = found[0]
    _validate_class(cls, path, _class_line(source, cls.__name__))
    return LoadedStrategy(
        name=path.stem, path=path, cls=cls, content_hash=digest, source=bytes(source)
    )


def _identifier(text: str) -> str:
    return "".join(char if char.isalnum() else "_" for char in text)


def _execute(source: bytes, path: Path, module_name: str) -> Any:
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as error:
        raise StrategyLoadError(path, f"syntax error: {error.msg}", error.lineno) from None
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None:
        raise StrategyLoadError(path, "cannot create a module for this file")
    module = importlib.util.module_from_spec(spec)
    # Registered while executing: dataclasses and pydantic resolve names through sys.modules.
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)
    except Exception as error:
        del sys.modules[module_name]
        line = _line_in_file(error, path)
        raise StrategyLoadError(path, f"{type(error).__name__}: {error}", line) from None
    return module


def _line_in_file(error: BaseException, path: Path) -> int | None:
    """The deepest traceback line that is in the strategy file itself."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__)
             if frame.filename == str(path)]  # fmt: skip
    return lines[-1] if lines else None


def _class_line(source: bytes, class_name: str) -> int | None:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return node.lineno
    return None


def _validate_class(cls: type[Strategy[Any]], path: Path, line: int | None) -> None:
    def refuse(message: str) -> None:
        raise StrategyLoadError(path, f"{cls.__name__}: {message}", line)

    if cls.INTERFACE_VERSION != INTERFACE_VERSION:
        refuse(
            f"written for strategy interface {cls.INTERFACE_VERSION}, this tradepipe runs "
            f"interface {INTERFACE_VERSION}"
        )
    if cls.on_candle is Strategy.on_candle:
        refuse("does not implement on_candle(self, context)")
    if not (inspect.isclass(cls.Parameters) and issubclass(cls.Parameters, StrategyParameters)):
        refuse("Parameters must subclass tradepipe.strategy.StrategyParameters")
    features = cls.required_features
    if not isinstance(features, tuple) or not all(isinstance(n, str) for n in features):
        refuse("required_features must be a tuple of feature names")
    try:
        cls.create()
    except StrategyParameterError as error:
        refuse(f"its parameter defaults do not validate ({error})")
    except Exception as error:
        refuse(f"cannot be created with default parameters: {type(error).__name__}: {error}")
