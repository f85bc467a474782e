"""sync_strategies on SQLite and PostgreSQL: the registry follows the folder through add,
edit, break, fix, delete and return, reports each change once, and is idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tradepipe.db import Strategy, StrategyStatus
from tradepipe.strategy import LoadedStrategy, load_strategy_source
from tradepipe.strategy.registry_sync import StrategySyncError, SyncReport, sync_strategies

SOURCE = """from tradepipe.strategy import DecisionContext, Enter, Strategy, StrategyParameters


class Parameters(StrategyParameters):
    threshold: float = {threshold}


class {name}(Strategy[Parameters]):
    Parameters = Parameters

    def on_candle(self, context: DecisionContext) -> Enter | None:
        return None
"""


def write(folder: Path, stem: str, class_name: str = "Mine", threshold: float = 1.0) -> Path:
    path = folder / f"{stem}.py"
    path.write_text(SOURCE.format(name=class_name, threshold=threshold))
    return path


def names(report: SyncReport) -> dict[str, list[str]]:
    return {
        bucket: [row.name for row in getattr(report, bucket)]
        for bucket in ("added", "edited", "invalid", "removed", "unchanged")
        if getattr(report, bucket)
    }


def rows(session: Session) -> dict[str, Strategy]:
    return {row.name: row for row in session.scalars(sa.select(Strategy))}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "strategies"
    path.mkdir()
    return path


def test_new_files_are_added_or_recorded_invalid_with_file_and_line(
    session: Session, folder: Path
) -> None:
    write(folder, "alpha", "Alpha")
    (folder / "broken.py").write_text("x = 1\ndef oops(:\n")
    (folder / "_helpers.py").write_text("raise SystemExit")  # not a strategy: ignored

    report = sync_strategies(session, folder)
    assert names(report) == {"added": ["alpha"], "invalid": ["broken"]}
    registry = rows(session)
    alpha, broken = registry["alpha"], registry["broken"]
    assert (alpha.status, alpha.class_name, alpha.version_count) == (
        StrategyStatus.VALID,
        "Alpha",
        1,
    )
    assert alpha.file_path == str(folder / "alpha.py") and len(alpha.content_hash) == 64
    assert (broken.status, broken.version_count, broken.error_line) == (
        StrategyStatus.INVALID,
        0,
        2,
    )
    assert broken.error is not None and broken.error.startswith(f"{folder / 'broken.py'}:2: ")
    assert [row.name for row in report.valid] == ["alpha"]
    assert report.to_dict()["invalid"][0]["error_line"] == 2


def test_a_second_sync_of_the_same_folder_changes_nothing(session: Session, folder: Path) -> None:
    write(folder, "alpha")
    (folder / "broken.py").write_text("def oops(:\n")
    sync_strategies(session, folder)
    session.commit()
    before = {name: (row.updated_at, row.content_hash) for name, row in rows(session).items()}

    again = sync_strategies(session, folder)
    session.commit()
    assert names(again) == {"unchanged": ["alpha", "broken"]}
    assert not again.changed
    after = {name: (row.updated_at, row.content_hash) for name, row in rows(session).items()}
    assert after == before


def test_an_edit_is_a_new_version_and_a_broken_edit_keeps_the_running_hash(
    session: Session, folder: Path
) -> None:
    path = write(folder, "alpha")
    sync_strategies(session, folder)
    first_hash = rows(session)["alpha"].content_hash

    write(folder, "alpha", threshold=2.0)
    assert names(sync_strategies(session, folder)) == {"edited": ["alpha"]}
    alpha = rows(session)["alpha"]
    assert alpha.version_count == 2 and alpha.content_hash != first_hash
    second_hash = alpha.content_hash

    path.write_text(path.read_text() + "\nraise RuntimeError('at import')\n")
    report = sync_strategies(session, folder)
    assert names(report) == {"invalid": ["alpha"]}
    alpha = rows(session)["alpha"]
    assert alpha.status is StrategyStatus.INVALID
    assert alpha.error is not None and "RuntimeError: at import" in alpha.error
    assert alpha.error_line == len(path.read_text().splitlines())
    assert (alpha.content_hash, alpha.version_count) == (second_hash, 2)
    # Still broken the same way: reported once, not on every sync.
    assert names(sync_strategies(session, folder)) == {"unchanged": ["alpha"]}

    write(folder, "alpha", threshold=3.0)
    assert names(sync_strategies(session, folder)) == {"edited": ["alpha"]}
    alpha = rows(session)["alpha"]
    assert (alpha.status, alpha.version_count, alpha.error) == (StrategyStatus.VALID, 3, None)


def test_a_deleted_file_is_removed_and_its_return_is_an_addition(
    session: Session, folder: Path
) -> None:
    path = write(folder, "alpha")
    sync_strategies(session, folder)
    path.unlink()
    assert names(sync_strategies(session, folder)) == {"removed": ["alpha"]}
    assert rows(session)["alpha"].status is StrategyStatus.REMOVED
    assert names(sync_strategies(session, folder)) == {"unchanged": ["alpha"]}

    write(folder, "alpha")  # the same content as before: the same version
    assert names(sync_strategies(session, folder)) == {"added": ["alpha"]}
    alpha = rows(session)["alpha"]
    assert (alpha.status, alpha.version_count) == (StrategyStatus.VALID, 1)


def test_a_missing_folder_changes_nothing(session: Session, folder: Path) -> None:
    write(folder, "alpha")
    sync_strategies(session, folder)
    with pytest.raises(StrategySyncError, match="does not exist"):
        sync_strategies(session, folder.parent / "strategeis")
    assert rows(session)["alpha"].status is StrategyStatus.VALID


def test_unchanged_files_are_not_executed_again(session: Session, folder: Path) -> None:
    executed: list[str] = []

    def counting_loader(source: bytes, path: Path) -> LoadedStrategy:
        executed.append(path.stem)
        return load_strategy_source(source, path)

    write(folder, "alpha")
    write(folder, "beta", "Beta")
    sync_strategies(session, folder, load=counting_loader)
    write(folder, "beta", "Beta", threshold=5.0)
    sync_strategies(session, folder, load=counting_loader)
    assert executed == ["alpha", "beta", "beta"]
