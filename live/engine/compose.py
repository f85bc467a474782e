"""The one place the engine's environment is chosen: which feed, broker, candle backfill,
model source, clock and notifiers an engine runs with. `live run`, the demo, the tests'
engine helpers and the benchmarks all build their engine here; a part passed in replaces
the configured one (an in-memory feed, a paper broker a test holds, an in-memory model
source), everything else follows the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, Unpack

from live.brokers import Broker
from live.engine.clock import Clock, MarketClock
from live.engine.config import EngineConfig
from live.engine.engine import Engine
from live.engine.features import NoBackfill
from live.engine.model_watcher import ModelSource
from live.feeds import (
    BinanceFeed,
    BinanceFeedConfig,
    BinanceRestBackfill,
    CandleBackfill,
    Feed,
)
from live.model_check import ModelChecker
from tradepipe.retries import Backoff

if TYPE_CHECKING:
    from live.notify import NotificationHub
    from tradepipe.config import Settings

__all__ = ["EngineParts", "GivenParts", "build_engine", "choose_parts", "make_feed"]


@dataclass(frozen=True, slots=True)
class EngineParts:
    """The environment of one engine. `broker` None: the engine routes each bot to its
    venue (live/engine/venues.py); `checker` None: model versions load unchecked (a test's
    in-memory source), else each is tried in a separate process first."""

    feed: Feed
    clock: Clock
    backfill: CandleBackfill
    models: Callable[[], ModelSource]
    checker: ModelChecker | None
    broker: Broker | None = None
    notifications: NotificationHub | None = None


def make_feed(config: EngineConfig) -> Feed:
    return BinanceFeed(
        BinanceFeedConfig(
            base_url=config.feed_url,
            silence_seconds=config.feed_silence_seconds,
            sanity=config.feed_sanity,
            max_message_bytes=config.feed_max_message_bytes,
            backoff=Backoff(initial_seconds=0.5, maximum_seconds=30.0),
        )
    )


def registry_source(tracking_uri: str) -> Callable[[], ModelSource]:
    """The MLflow model registry, opened when the watcher first reads it."""

    def open_registry() -> ModelSource:
        from tradepipe.registry import ModelRegistry  # mlflow: only when a model is read

        return ModelRegistry(tracking_uri)

    return open_registry


class GivenParts(TypedDict, total=False):
    """The parts a caller may give (absent or None: the configured one); `settings` with
    notifiers configured adds them when `notifications` is not given."""

    feed: Feed | None
    broker: Broker | None
    backfill: CandleBackfill | None
    models: Callable[[], ModelSource] | None
    notifications: NotificationHub | None
    clock: Clock | None
    settings: Settings | None


def choose_parts(config: EngineConfig, **given: Unpack[GivenParts]) -> EngineParts:
    """The parts given, the configured ones for the rest. Notifiers from `settings` have
    their secrets resolved now (NotifierConfigError if one is missing)."""
    notifications = given.get("notifications")
    settings = given.get("settings")
    if notifications is None and settings is not None and settings.notifiers:
        from live.notify import build_hub

        notifications = build_hub(settings)
    checker = None
    models = given.get("models")
    if models is None:
        models = registry_source(config.mlflow_tracking_uri)
        checker = ModelChecker(
            config.mlflow_tracking_uri, timeout_seconds=config.model_check_timeout_seconds
        )
    backfill = given.get("backfill")
    if backfill is None:
        backfill = BinanceRestBackfill(config.rest_url) if config.rest_url else NoBackfill()
    feed, clock = given.get("feed"), given.get("clock")
    return EngineParts(
        feed=feed if feed is not None else make_feed(config),
        clock=clock if clock is not None else MarketClock(),
        backfill=backfill,
        models=models,
        checker=checker,
        broker=given.get("broker"),
        notifications=notifications,
    )


def build_engine(config: EngineConfig, **given: Unpack[GivenParts]) -> Engine:
    """An engine on the parts given and the configured ones for the rest (`choose_parts`)."""
    return Engine(config, choose_parts(config, **given))
