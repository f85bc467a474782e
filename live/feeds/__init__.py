"""Market data for the live engine: the `Feed` seam, the Binance adapter, its in-memory
double, and the repair of candles across reconnects (Gap events and REST backfill)."""

from live.feeds.backfill import (
    BackfillError,
    BinanceRestBackfill,
    CandleBackfill,
    InMemoryBackfill,
)
from live.feeds.binance import BinanceFeed, BinanceFeedConfig
from live.feeds.candles import HealingConfig, HealingStats, SecondCandles
from live.feeds.memory import InMemoryFeed
from live.feeds.protocol import (
    CallbackConsumer,
    Feed,
    FeedConsumer,
    FeedMetrics,
    FeedState,
    FeedStatus,
    Gap,
    LatencySummary,
    Subscription,
    SuspectCounts,
    TradeQueue,
)
from live.feeds.router import StreamRouter
from live.feeds.sanity import SanityConfig

__all__ = [
    "BackfillError",
    "BinanceFeed",
    "BinanceFeedConfig",
    "BinanceRestBackfill",
    "CallbackConsumer",
    "CandleBackfill",
    "Feed",
    "FeedConsumer",
    "FeedMetrics",
    "FeedState",
    "FeedStatus",
    "Gap",
    "HealingConfig",
    "HealingStats",
    "InMemoryBackfill",
    "InMemoryFeed",
    "LatencySummary",
    "SanityConfig",
    "SecondCandles",
    "StreamRouter",
    "Subscription",
    "SuspectCounts",
    "TradeQueue",
]
