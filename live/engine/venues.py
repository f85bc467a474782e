"""The engine's venues: which broker each bot's orders go to, and how one is connected.

A bot's venue follows its row: paper mode trades on the paper broker; testnet and live
trade on Binance through ccxt with the bot config's named credential set, whose key and
secret are resolved here, by name, only when the venue is first used
(`<SET>_API_KEY`, `<SET>_API_SECRET`, see `tradepipe.secrets`); they live in the ccxt
client and nowhere else. Live needs `allow_live_trading` in the engine config as well,
checked again here so no path can reach a live venue without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from live.brokers import Broker, PaperBroker, PaperConfig
from live.brokers.routing import PAPER, EventSink, RoutingBroker, Venue, VenueError
from live.engine.bot import BotRow
from live.engine.config import EngineConfig
from tradepipe.config import ConfigError
from tradepipe.enums import BotMode
from tradepipe.secrets import resolve_secret

if TYPE_CHECKING:
    from live.brokers.exchange import ExchangeConfig

__all__ = ["build_broker", "connect_venue", "exchange_config", "venue_of_row"]


def venue_of_row(row: BotRow) -> Venue:
    if row.mode is BotMode.PAPER:
        return PAPER
    return Venue(row.mode, row.config.credentials)


def exchange_config(config: EngineConfig, venue: Venue) -> ExchangeConfig:
    from live.brokers.exchange import ExchangeConfig  # ccxt: only when needed

    testnet = venue.mode is BotMode.TESTNET
    return ExchangeConfig(
        name=venue.name,
        sandbox=testnet,
        rest_url=config.exchange_testnet_url if testnet else config.exchange_live_url,
        timeout_seconds=config.exchange_timeout_seconds,
        recv_window_ms=config.exchange_recv_window_ms,
        poll_seconds=config.exchange_poll_seconds,
        rate_limit_ms=config.exchange_rate_limit_ms,
        retry=config.broker_retry,
        fees=config.fees,
        protection=config.exchange_venue_protection,
        stop_limit_pct=config.exchange_stop_limit_pct,
    )


def connect_venue(
    config: EngineConfig, venue: Venue, clock: Callable[[], int | None] | None = None
) -> Broker:
    """The ccxt broker of `venue`; `VenueError` naming what to set when it cannot be."""
    if venue.mode is BotMode.LIVE and not config.allow_live_trading:
        raise VenueError(
            f"venue {venue.name}: live trading is switched off (set allow_live_trading)"
        )
    if not venue.credentials:
        raise VenueError(f"venue {venue.name}: the bot config names no credential set")
    try:
        api_key = resolve_secret(f"{venue.credentials}_API_KEY")
        secret = resolve_secret(f"{venue.credentials}_API_SECRET")
    except ConfigError as error:  # SecretNotFoundError, SecretsFileError: names only
        raise VenueError(f"venue {venue.name}: {error}") from None
    from live.brokers.ccxt_broker import CcxtBroker

    return CcxtBroker(exchange_config(config, venue), api_key=api_key, secret=secret, clock=clock)


def build_broker(
    config: EngineConfig,
    *,
    clock: Callable[[], int | None],
    rows: Callable[[], Iterable[BotRow]],
    on_event: EventSink,
) -> RoutingBroker:
    """The engine's broker: paper for paper bots, ccxt per (mode, credentials) otherwise.
    `rows()` gives the bots running now."""

    def venue_of(bot: str) -> Venue | None:
        row = next((r for r in rows() if r.name == bot), None)
        return None if row is None else venue_of_row(row)

    paper = PaperBroker(PaperConfig(config.paper_slippage_bps, config.fees), clock=clock)
    return RoutingBroker(
        paper,
        venue_of=venue_of,
        venues=lambda: {venue_of_row(row) for row in rows()},
        connect=lambda venue: connect_venue(config, venue, clock),
        on_event=on_event,
    )
