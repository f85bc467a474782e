"""Records to plain dicts and back, for JSON state files and database JSON columns.

State must survive restarts and strategy reloads, so every record turns into dicts, lists,
strings, numbers, booleans and None only, and comes back equal. Reading is strict: an
unknown or missing field is an error naming the record, never a silently dropped value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Any, TypeVar

__all__ = ["StateError", "build", "plain", "record_to_dict"]

Record = TypeVar("Record")


class StateError(ValueError):
    """Saved state that does not describe a valid record."""


def plain(value: Any) -> Any:
    """A dataclass, enum, tuple or scalar as JSON-ready plain data."""
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {item.name: plain(getattr(value, item.name)) for item in fields(value)}
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    return value


def record_to_dict(record: Any) -> dict[str, Any]:
    """A dataclass record as a plain dict (see `plain`)."""
    data = plain(record)
    assert isinstance(data, dict)
    return data


def build(
    cls: type[Record], data: Mapping[str, Any], converters: Mapping[str, Callable[[Any], Any]]
) -> Record:
    """`cls(**data)` with `converters` applied per field; errors name the record."""
    if not isinstance(data, Mapping):
        raise StateError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    known = {item.name for item in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise StateError(f"{cls.__name__}: unknown fields {unknown}")
    try:
        values = {name: converters.get(name, _same)(value) for name, value in data.items()}
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise StateError(f"{cls.__name__}: {error}") from None


def _same(value: Any) -> Any:
    return value
