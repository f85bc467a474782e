"""What every command shares: consoles, the one-line error rule, settings, time formats."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.orm import Session

    from tradepipe.config import Settings

# Piped output (CI logs, scripts) gets wide lines instead of tables wrapped at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
error_console = Console(stderr=True, highlight=False, soft_wrap=True)


class UserError(Exception):
    """A problem with the user's input, reported as one line."""


def fail(message: str) -> NoReturn:
    error_console.print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code=1)


def _user_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "bad input", not "bug": they end in one line."""
    from tradepipe.binance import MalformedMessageError
    from tradepipe.botconfig import BotConfigError
    from tradepipe.capture import CaptureFormatError
    from tradepipe.config import ConfigError
    from tradepipe.db import DatabaseError
    from tradepipe.timeframes import InvalidTimeframeError

    return (
        UserError,
        ConfigError,
        InvalidTimeframeError,
        DatabaseError,
        BotConfigError,
        CaptureFormatError,
        MalformedMessageError,
        FileNotFoundError,
    )


@contextmanager
def user_errors(extra: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    try:
        yield
    except (*_user_error_types(), *extra) as error:
        fail(str(error))


def settings() -> Settings:
    from tradepipe.config import load_settings

    with user_errors():
        return load_settings()


@contextmanager
def database_session() -> Iterator[Session]:
    """A session on the configured trading database, which must be migrated already."""
    from tradepipe.db import create_engine_for, require_current_schema, session_scope

    current = settings()
    with user_errors():
        require_current_schema(current.resolved_database_url)
        engine = create_engine_for(current.resolved_database_url)
    try:
        with user_errors(), session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def parse_day(text: str | None, option: str) -> int | None:
    """A date (YYYY-MM-DD) or ISO-8601 time in UTC -> ms since epoch."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{option} {text!r} is not a date: use YYYY-MM-DD or ISO-8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def format_ms(time_ms: int | None) -> str:
    if time_ms is None:
        return "-"
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def write_timestamped_csv(frame: pd.DataFrame, out: Path, time_column: str = "start_ms") -> None:
    """Write `frame` with its ms `time_column` as an ISO-8601 UTC `timestamp` first column."""
    import pandas as pd

    table = frame.copy()
    stamps = pd.to_datetime(table.pop(time_column), unit="ms", utc=True)
    table.insert(0, "timestamp", stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
    except OSError as error:
        raise UserError(f"cannot write {out}: {error.strerror}") from None
