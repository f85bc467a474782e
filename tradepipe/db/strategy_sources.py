"""Every strategy version's source, kept by content hash, so any past version can be re-run.

Orders, positions and the decision log name the strategy version by its content hash (the
loader's sha256 of the file's bytes); the file itself is edited and deleted by operators.
`strategy_sources` keeps the exact bytes of each version the engine ever loaded, written
once (a version is immutable: same hash, same bytes), so a review can load the version
that was live with `tradepipe.strategy.loader.load_strategy_source(source, path)`.

Introduced by migration 0003; the engine writes it through its recorder when a scan loads
a new version, readers use `strategy_source`.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from tradepipe.db.base import Base
from tradepipe.db.types import UTCDateTime, utcnow
from tradepipe.strategy.loader import content_hash as hash_of

__all__ = ["StrategySource", "StrategySourceError", "record_strategy_source", "strategy_source"]


class StrategySourceError(ValueError):
    """A source whose bytes do not match the hash it is recorded under; nothing written."""


class StrategySource(Base):
    __tablename__ = "strategy_sources"

    content_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128))  # the file stem it was first seen as
    source: Mapped[bytes] = mapped_column(sa.LargeBinary)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def record_strategy_source(session: Session, name: str, content_hash: str, source: bytes) -> bool:
    """Keep `source` under `content_hash` unless it is kept already; True if added."""
    if hash_of(source) != content_hash:
        raise StrategySourceError(
            f"strategy {name}: source does not hash to {content_hash[:12]} (got "
            f"{hash_of(source)[:12]}); a version is recorded under the hash of its own bytes"
        )
    if session.get(StrategySource, content_hash) is not None:
        return False
    session.add(StrategySource(content_hash=content_hash, name=name, source=source))
    session.flush()
    return True


def strategy_source(session: Session, content_hash: str) -> bytes | None:
    """The source of the version `content_hash` (None if it was never recorded)."""
    row = session.get(StrategySource, content_hash)
    return None if row is None else bytes(row.source)
