"""The replay exchange: Binance's WebSocket and REST protocols on loopback, playing a
capture file or the synthetic market. The engine connects to it as to Binance."""

from live.replay.rest import RestServer, TradeRecord
from live.replay.run import ExchangeOptions, make_source, run_replay, serve_replay
from live.replay.server import ReplayServer
from live.replay.sources import (
    CaptureSource,
    ReplayMessage,
    ReplaySource,
    SyntheticSource,
    trade_message,
)

__all__ = [
    "CaptureSource",
    "ExchangeOptions",
    "ReplayMessage",
    "ReplayServer",
    "ReplaySource",
    "RestServer",
    "SyntheticSource",
    "TradeRecord",
    "make_source",
    "run_replay",
    "serve_replay",
    "trade_message",
]
