"""The `tradepipe` command: the one composition root.

It wires the kernel to the research and live sides, importing them lazily inside commands so
that `tradepipe --help` stays fast and the kernel never depends on them. Every error a user
can cause ends in one line on stderr and exit status 1; usage errors exit 2 (Typer's own).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from tradepipe import __version__

if TYPE_CHECKING:
    from tradepipe.config import Settings

app = typer.Typer(
    name="tradepipe",
    help="Research-to-live crypto trading pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The trading database.", no_args_is_help=True)
data_app = typer.Typer(help="Market data: ingest, list, build candles.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(data_app, name="data")

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


def version_callback(value: bool) -> None:
    if value:
        console.print(f"tradepipe {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True)
    ] = False,
) -> None:
    """Research-to-live crypto trading pipeline. State lives under var/ by default."""


# --- database ---------------------------------------------------------------------------


def upgrade(current: Settings) -> str:
    from tradepipe.db.migrate import upgrade_database

    with user_errors():
        return upgrade_database(current.resolved_database_url)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the trading database to the newest schema (SQLite or PostgreSQL)."""
    current = settings()
    revision = upgrade(current)
    console.print(f"database at revision [bold]{revision}[/]: {_masked(current)}")


def _masked(current: Settings) -> str:
    from tradepipe.db.session import mask_url

    return mask_url(current.resolved_database_url)


# --- market data ------------------------------------------------------------------------

SOURCES = ("synthetic", "csv", "capture", "ccxt")


@data_app.command("ingest")
def data_ingest(
    source: Annotated[str, typer.Option(help="synthetic, csv, capture or ccxt")],
    symbol: Annotated[str, typer.Option(help="e.g. BTCUSDT")],
    timeframe: Annotated[str, typer.Option(help="candle interval: 1s, 1m, 5m, 1h, 1d ...")],
    path: Annotated[Path | None, typer.Option(help="input file for csv and capture")] = None,
    start: Annotated[str | None, typer.Option(help="first day, UTC (YYYY-MM-DD)")] = None,
    end: Annotated[str | None, typer.Option(help="day after the last, UTC (exclusive)")] = None,
    seed: Annotated[int, typer.Option(help="synthetic market seed")] = 7,
    exchange: Annotated[
        str | None, typer.Option(help="exchange name the series is stored under")
    ] = None,
) -> None:
    """Ingest candles into the market data store; re-running a range changes nothing."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    from research.marketdata import IngestError, IngestRequest, MarketDataStore, ingest

    current = settings()
    with user_errors((IngestError,)):
        if source not in SOURCES:
            raise UserError(f"unknown source {source!r}: choose one of {', '.join(SOURCES)}")
        request = IngestRequest(
            source=source,
            exchange=exchange,
            symbol=symbol.upper(),
            timeframe=timeframe,
            path=path,
            start_ms=parse_day(start, "--start"),
            end_ms=parse_day(end, "--end"),
            seed=seed,
        )
        store = MarketDataStore(current.resolved_market_data_dir)
        columns = (BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
        with Progress(
            *columns, console=error_console, transient=True, disable=not error_console.is_terminal
        ) as progress:
            task = progress.add_task(f"ingest {source}", total=None)
            report: Callable[[int, int], None] = lambda done, total: progress.update(  # noqa: E731
                task, completed=done, total=total
            )
            result = ingest(store, request, progress=report)
    verb = "no change" if result.rows_added == result.rows_changed == 0 else "stored"
    console.print(
        f"{verb}: {result.exchange}/{result.symbol}/{result.timeframe} "
        f"fetched {result.rows_fetched}, added {result.rows_added}, "
        f"changed {result.rows_changed}, total {result.rows_total} "
        f"({format_ms(result.first_start_ms)} .. {format_ms(result.last_start_ms)})"
    )


@data_app.command("list")
def data_list() -> None:
    """Show every stored series with its range and missing intervals."""
    from research.marketdata import MarketDataStore

    current = settings()
    series = MarketDataStore(current.resolved_market_data_dir).list_series()
    if not series:
        console.print(
            "no market data yet: try `tradepipe data ingest --source synthetic "
            "--symbol BTCUSDT --timeframe 1m --start 2024-01-01 --end 2024-02-01`"
        )
        return
    table = Table("exchange", "symbol", "timeframe", "candles", "first", "last", "missing")
    for item in series:
        table.add_row(
            item.exchange,
            item.symbol,
            item.timeframe,
            str(item.rows),
            format_ms(item.first_start_ms),
            format_ms(item.last_start_ms),
            str(item.missing_intervals),
        )
    console.print(table)


@data_app.command("candles")
def data_candles(
    trades: Annotated[
        Path, typer.Option(help="trade CSV (timestamp,id,side,price,amount) or capture")
    ],
    timeframe: Annotated[str, typer.Option(help="candle interval: 1s, 1m, 1h ...")],
    out: Annotated[Path, typer.Option(help="CSV file to write")],
    symbol: Annotated[str | None, typer.Option(help="only this symbol (captures)")] = None,
) -> None:
    """Build candles from trades and write timestamp,open,high,low,close,volume,... CSV."""
    from research.marketdata import IngestError, read_trade_file
    from tradepipe.candles import aggregate_trades
    from tradepipe.timeframes import parse_timeframe

    with user_errors((IngestError,)):
        frame = parse_timeframe(timeframe)
        trade_frame = read_trade_file(trades, symbol)
        if trade_frame.empty:
            raise UserError(f"{trades}: no trades found")
        candles = aggregate_trades(trade_frame, frame)
        write_candle_csv(candles, out)
    console.print(f"wrote {len(candles)} {frame} candles to {out}")


def write_candle_csv(candles: object, out: Path) -> None:
    """Candles in the exchange files' layout, ISO-8601 UTC timestamps, exact float text."""
    import pandas as pd

    assert isinstance(candles, pd.DataFrame)
    table = candles.rename(columns={"trade_count": "trades"}).copy()
    stamps = pd.to_datetime(table.pop("start_ms"), unit="ms", utc=True)
    table.insert(0, "timestamp", stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    table["trades"] = table["trades"].astype("Int64")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
    except OSError as error:
        raise UserError(f"cannot write {out}: {error.strerror}") from None


# --- the platform -----------------------------------------------------------------------


@app.command("up")
def up() -> None:
    """Set up local state and the database (the services arrive with the orchestration work)."""
    from tradepipe.localstate import prepare_local_state

    current = settings()
    with user_errors():
        report = prepare_local_state(current)
    table = Table("part", "state", title="tradepipe is set up")
    for part, state in report:
        table.add_row(part, state)
    console.print(table)


@app.command("config")
def show_config() -> None:
    """Print the effective settings (defaults, TOML file and TRADEPIPE_* variables)."""
    current = settings()
    table = Table("setting", "value")
    for name, value in current.model_dump().items():
        table.add_row(name, str(value))
    table.add_row("(database)", _masked(current))
    table.add_row("(mlflow store)", current.resolved_mlflow_tracking_uri)
    console.print(table)


def main() -> None:
    """Entry point of the `tradepipe` script."""
    try:
        app()
    except KeyboardInterrupt:
        error_console.print("interrupted")
        sys.exit(130)
