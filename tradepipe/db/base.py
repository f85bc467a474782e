"""The declarative base and the metadata every table hangs off.

The naming convention gives every constraint and index a deterministic name, so Alembic
migrations can refer to them on both SQLite (which names nothing by itself) and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

__all__ = ["NAMING_CONVENTION", "Base"]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every trading-database model; `Base.metadata` is Alembic's target."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
