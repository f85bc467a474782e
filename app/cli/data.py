"""Market data commands: ingest, list, build candles from trades."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from app.cli.common import (
    UserError,
    console,
    error_console,
    format_ms,
    parse_day,
    settings,
    user_errors,
    write_timestamped_csv,
)

if TYPE_CHECKING:
    import pandas as pd

data_app = typer.Typer(help="Market data: ingest, list, build candles.", no_args_is_help=True)


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

    from research.marketdata import IngestError, IngestRequest, ingest
    from tradepipe.marketdata import MarketDataStore

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
    from tradepipe.marketdata import MarketDataStore

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


def write_candle_csv(candles: pd.DataFrame, out: Path) -> None:
    """Candles in the exchange files' layout, ISO-8601 UTC timestamps, exact float text."""
    table = candles.rename(columns={"trade_count": "trades"})
    table["trades"] = table["trades"].astype("Int64")
    write_timestamped_csv(table, out)
