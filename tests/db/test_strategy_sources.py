"""strategy_sources keeps each strategy version's exact bytes under its content hash, once;
a source that does not hash to its key is refused and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tradepipe.db import (
    StrategySourceError,
    record_strategy_source,
    session_scope,
    strategy_source,
)
from tradepipe.strategy import content_hash, load_strategy_source

SOURCE = b"""from tradepipe.strategy import Strategy, StrategyParameters


class Quiet(Strategy[StrategyParameters]):
    def on_candle(self, context):
        return None
"""


def test_a_version_is_kept_once_and_comes_back_runnable(engine: Engine, tmp_path: Path) -> None:
    digest = content_hash(SOURCE)
    with session_scope(engine) as session:
        assert record_strategy_source(session, "quiet", digest, SOURCE) is True
    with session_scope(engine) as session:
        assert record_strategy_source(session, "renamed", digest, SOURCE) is False
    with session_scope(engine) as session:
        kept = strategy_source(session, digest)
        assert strategy_source(session, content_hash(b"never loaded")) is None
    assert kept == SOURCE
    loaded = load_strategy_source(kept, tmp_path / "quiet.py")
    assert loaded.content_hash == digest and loaded.class_name == "Quiet"


def test_a_source_under_another_hash_is_refused(engine: Engine) -> None:
    wrong = content_hash(b"something else")
    refused = pytest.raises(StrategySourceError, match="does not hash to")
    with refused, session_scope(engine) as session:
        record_strategy_source(session, "quiet", wrong, SOURCE)
    with session_scope(engine) as session:
        assert strategy_source(session, wrong) is None
