"""Column types shared by every table, chosen so SQLite and PostgreSQL behave the same."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = ["ENUM_LENGTH", "IdType", "UTCDateTime", "enum_column_type", "utcnow"]

# Every enum column gets the same width, so adding a longer member later only widens a
# CHECK constraint and never alters a column type.
ENUM_LENGTH = 32

# BIGINT on PostgreSQL (orders, fills and events grow without bound); plain INTEGER on SQLite,
# where only `INTEGER PRIMARY KEY` is an auto-incrementing rowid alias.
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> datetime:
    """Default for audit timestamps (created_at, updated_at); trading times come from the
    caller's Clock, never from here."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware datetime that always comes back in UTC.

    SQLite has no time zones and returns naive values, PostgreSQL returns values in the
    session's zone; both are normalised to UTC on the way out. Naive datetimes are refused
    on the way in, because guessing their zone is how silent off-by-hours bugs start.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given to the database: "
                "pass a timezone-aware datetime (e.g. datetime.now(UTC))"
            )
        utc_value = value.astimezone(UTC)
        # SQLite stores text; drop the offset so stored values sort and compare as text.
        return utc_value.replace(tzinfo=None) if dialect.name == "sqlite" else utc_value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - drivers always give datetimes
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_column_type(enum: type[StrEnum], name: str) -> sa.Enum:
    """A VARCHAR holding the enum's values, with a CHECK constraint named
    `ck_<table>_<name>` by the metadata's naming convention."""
    return sa.Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=ENUM_LENGTH,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )
