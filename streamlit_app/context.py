"""What every page shares: the settings, the database engine, reads through the query layer,
the live-refresh switch, and one way to show a failed read.

Pages never write SQL: they call `read(query_function, ...)` with a function of
`tradepipe.db.queries` or `tradepipe.db.dashboard_queries`, which runs it in a short session
and returns its frozen views. Errors a user can fix (unreachable database, schema behind the
code, bad settings) become one message on the page instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
import streamlit as st
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tradepipe.config import ConfigError, Settings, load_settings
from tradepipe.db.migrate import require_current_schema
from tradepipe.db.session import (
    DatabaseError,
    DatabaseUnavailableError,
    create_engine_for,
    mask_url,
    normalise_url,
    session_scope,
)

__all__ = [
    "REFRESH_SECONDS",
    "database_label",
    "engine",
    "read",
    "read_errors_shown",
    "refresh_every",
    "settings",
    "utc_midnight",
]

P = ParamSpec("P")
T = TypeVar("T")

# How often live sections re-read the database: a few heartbeats' worth, cheap for SQLite.
REFRESH_SECONDS = 5.0
LIVE_KEY = "tradepipe_live_refresh"


def settings() -> Settings:
    """The platform settings, loaded as every tradepipe process loads them (TRADEPIPE_*
    variables over the TOML file); a bad setting stops the page with its message."""
    try:
        return load_settings()
    except ConfigError as error:
        st.error(f"Configuration error: {error}")
        st.stop()


def _dispose(engine: Engine) -> None:
    engine.dispose()


@st.cache_resource(show_spinner=False, max_entries=4, on_release=_dispose)
def _engine_for(url: str) -> Engine:
    # Cached per URL for the process; a failure is not cached, so fixing the database (or
    # running `tradepipe db upgrade`) is picked up by the next refresh.
    parsed = normalise_url(url)
    database = parsed.database or ""
    # Opening a missing SQLite file would create it: a reader must not.
    local_file = database not in {"", ":memory:"} and not database.startswith("file:")
    if (
        parsed.get_backend_name() == "sqlite"
        and local_file
        and not Path(database).expanduser().is_file()
    ):
        raise DatabaseUnavailableError(
            f"no trading database at {database} yet: run `tradepipe up` "
            "(or `tradepipe db upgrade`) to create it"
        )
    require_current_schema(url)
    return create_engine_for(url)


def engine(current: Settings) -> Engine:
    """The engine of the trading database, checked once to be at the code's schema."""
    try:
        return _engine_for(current.resolved_database_url)
    except DatabaseError as error:
        st.error(f"The trading database cannot be read: {error}")
        st.stop()


def read(
    current: Settings,
    query: Callable[Concatenate[Session, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run one query-layer function in its own short session and return its views."""
    with session_scope(engine(current)) as session:
        return query(session, *args, **kwargs)


@contextmanager
def read_errors_shown() -> Iterator[None]:
    """Show a read that fails mid-refresh (a locked SQLite file, a restarting server) as one
    line; the next refresh tries again."""
    try:
        yield
    except (DatabaseError, sa.exc.SQLAlchemyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "no detail"
        st.error(f"Reading the trading database failed: {first_line}")


def database_label(current: Settings) -> str:
    """The database URL with any password hidden."""
    return mask_url(current.resolved_database_url)


def refresh_every() -> float | None:
    """The `run_every` of live sections: REFRESH_SECONDS, or None when switched off."""
    return REFRESH_SECONDS if st.session_state.get(LIVE_KEY, True) else None


def live_toggle() -> None:
    st.toggle(
        f"Live refresh (every {REFRESH_SECONDS:g} s)",
        value=True,
        key=LIVE_KEY,
        help="Re-read the database in place, without reloading the page.",
    )


def utc_midnight(now: datetime | None = None) -> datetime:
    """Start of the current UTC day: 'today' on every page."""
    moment = now or datetime.now(UTC)
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
