"""Live-side commands: the engine and the replay feed."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import UserError, console, parse_day, settings, user_errors

feed_app = typer.Typer(help="Market data feeds for the live engine.", no_args_is_help=True)
live_app = typer.Typer(help="The live trading engine.", no_args_is_help=True)


@live_app.command("run")
def live_run() -> None:
    """Run every enabled bot until SIGTERM/SIGINT (graceful: no new entries, state flushed).

    Market data comes from `feed_url` (default: the local replay feed); the control API
    listens on host:engine_api_port.
    """
    from live.engine import run_engine

    current = settings()
    with user_errors((ValueError,)):
        code = run_engine(current)
    raise typer.Exit(code)


@feed_app.command("replay")
def feed_replay(
    source: Annotated[
        str, typer.Option(help="'synthetic' or a Binance capture file")
    ] = "synthetic",
    speed: Annotated[float, typer.Option(help="times real time; 0 = as fast as possible")] = 1.0,
    port: Annotated[int | None, typer.Option(help="WebSocket port (default: replay_port)")] = None,
    rest_port: Annotated[int | None, typer.Option(help="REST port for kline backfill")] = None,
    symbol: Annotated[list[str] | None, typer.Option(help="synthetic symbols (repeatable)")] = None,
    seed: Annotated[int, typer.Option(help="synthetic market seed")] = 7,
    loop: Annotated[bool, typer.Option(help="start over at the end of the capture")] = False,
    start: Annotated[str | None, typer.Option(help="synthetic: first day, UTC")] = None,
    exchange_port: Annotated[
        int | None, typer.Option(help="also serve the exchange simulator (Binance spot REST)")
    ] = None,
    exchange_credentials: Annotated[
        str, typer.Option(help="credential set of its account: NAME_API_KEY, NAME_API_SECRET")
    ] = "SIMNET",
    exchange_balance: Annotated[
        float, typer.Option(help="simulated account's balance of each quote asset")
    ] = 10_000.0,
) -> None:
    """Serve Binance's combined-stream protocol on loopback from a capture or the synthetic
    market; the engine connects to it exactly as to Binance (only the base URL differs).
    With --exchange-port, an exchange simulator beside it fills testnet bots' orders against
    the same trades (point exchange_testnet_url at it)."""
    from live.replay import ExchangeOptions, run_replay
    from tradepipe.config import ConfigError
    from tradepipe.secrets import resolve_secret

    current = settings()
    with user_errors((ValueError,)):
        if source != "synthetic" and symbol:
            raise UserError("--symbol picks synthetic markets; a capture replays what it holds")
        exchange = None
        if exchange_port is not None:
            try:
                exchange = ExchangeOptions(
                    exchange_port,
                    resolve_secret(f"{exchange_credentials}_API_KEY", current),
                    resolve_secret(f"{exchange_credentials}_API_SECRET", current),
                    exchange_balance,
                )
            except ConfigError as error:
                raise UserError(f"--exchange-credentials: {error}") from None
        code = run_replay(
            source,
            host=current.host,
            port=current.replay_port if port is None else port,
            rest_port=current.replay_rest_port if rest_port is None else rest_port,
            speed=speed,
            symbols=tuple(s.upper() for s in symbol) if symbol else ("BTCUSDT",),
            seed=seed,
            loop=loop,
            start_ms=parse_day(start, "--start"),
            announce=console.print,
            exchange=exchange,
        )
    raise typer.Exit(code)


@live_app.command("review")
def live_review(
    bot: Annotated[str, typer.Option(help="the bot to review")],
    since: Annotated[
        str | None, typer.Option(help="first candle, UTC (YYYY-MM-DD or ISO-8601)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="end of the range, UTC (exclusive)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the review as JSON")] = False,
    record: Annotated[
        bool, typer.Option(help="keep the review in the database (and MLflow for a model bot)")
    ] = True,
) -> None:
    """Replay the bot's recorded candles through the backtester with the strategy and model
    versions that were live, and compare features, probabilities, decisions and positions."""
    import json

    from research.review import ReviewError, review_bot
    from research.review.record import record_review
    from research.review.settings import inputs_from_settings
    from tradepipe.registry import RegistryError

    current = settings()
    with user_errors((ReviewError, RegistryError)):
        since_ms = parse_day(since, "--since")
        until_ms = parse_day(until, "--until")
        if since_ms is not None and until_ms is not None and until_ms <= since_ms:
            raise UserError(f"--until {until} is not after --since {since}")
        inputs = inputs_from_settings(current, bot, since_ms=since_ms, until_ms=until_ms)
        report = review_bot(inputs)
        if record:
            record_review(report, inputs)
    summary = report.to_dict()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    # plain lines, never wrapped: one per divergence, for grep and scripts
    typer.echo(
        f"bot {bot} {summary['symbol']} {summary['timeframe']} "
        f"{summary['since']} .. {summary['until']}: "
        f"features {'equal' if report.features_equal else 'DIFFER'}, "
        f"decisions {'equal' if report.decisions_equal else 'DIFFER'} "
        f"({report.decisions_agreeing}/{report.decisions_compared}), positions "
        f"{len(report.matches)} matched of {report.positions_live} live and "
        f"{report.positions_backtest} backtest"
    )
    for divergence in report.divergences:
        typer.echo(
            f"  {divergence.kind} {divergence.time}: {divergence.detail} ({divergence.cause})"
        )
