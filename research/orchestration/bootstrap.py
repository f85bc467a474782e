"""What `tradepipe up` and `tradepipe demo` put in place so the first screen is alive.

- `ingest_spec_data`: the candles every model spec trains on, when its data is a synthetic
  store key (the embedded market): the spec's own window, so `model_lifecycle` finds its
  data on a fresh machine. Ingest is an idempotent upsert: a second run stores nothing.
- `register_demo_bots`: one paper bot for each default strategy (`ema_rsi`, rule-based, and
  `lgbm_threshold`, which consumes the demo spec's champion). A bot that exists already is
  left as it is (the operator may have changed it).

The demo bots trade the demo model's 1 m candles with the demo spec's exits when the
market runs on its own clock (`tradepipe demo`, replay as fast as read), and 1 s candles
with timeouts divided by 60 under `tradepipe up`, whose replay plays the synthetic market
60 times faster than real time on the wall clock: there one second of the feed holds one
synthetic minute (app.services.stack).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from research.marketdata import IngestRequest, ingest
from research.orchestration.config import OrchestrationConfig, discover_specs
from research.training import load_spec
from tradepipe.botconfig import parse_bot_config
from tradepipe.bots import NewBot, add_bot
from tradepipe.config import Settings
from tradepipe.db import create_engine_for, get_bot, session_scope, upgrade_database
from tradepipe.marketdata import MarketDataStore
from tradepipe.timeframes import parse_timeframe

__all__ = [
    "DEMO_BOTS",
    "DemoBot",
    "end_of_spec_windows",
    "ingest_spec_data",
    "register_demo_bots",
]

_SYNTHETIC = "synthetic"


@dataclass(frozen=True, slots=True)
class DemoBot:
    name: str
    strategy: str
    config: dict[str, Any]


# The demo spec's own exits and sizes (research/specs/btcusdt_1m.toml), for 1 m candles:
# exits wide enough to clear the paper broker's costs (tradepipe/costs.py).
DEMO_BOTS = (
    DemoBot(
        "demo_ema_rsi",
        "ema_rsi",
        {
            "capital_per_trade": 100.0,
            "take_profit_pct": 0.7,
            "stop_loss_pct": 0.5,
            "max_holding_seconds": 1800.0,
            "maker_order_timeout_seconds": 60.0,
        },
    ),
    DemoBot(
        "demo_lgbm",
        "lgbm_threshold",
        {
            "capital_per_trade": 1000.0,
            "take_profit_pct": 0.7,
            "stop_loss_pct": 0.5,
            "max_holding_seconds": 1800.0,
            "maker_order_timeout_seconds": 60.0,
            "confidence_threshold": 0.5,
            "model_name": "btcusdt_1m_triple_barrier",
        },
    ),
)
DEMO_SYMBOL = "BTCUSDT"
_MODEL_TIMEFRAME_SECONDS = 60.0


def ingest_spec_data(settings: Settings, config: OrchestrationConfig) -> list[str]:
    """Ingest the synthetic candles of every spec's window; one line per series."""
    store = MarketDataStore(settings.resolved_market_data_dir)
    done: list[str] = []
    for path in discover_specs(config):
        spec = load_spec(path)
        parts = spec.data.reference.split("/")
        if len(parts) != 3 or parts[0] != _SYNTHETIC:
            continue  # a file or an exchange series: ingested by its owner, not here
        now_ms = int(time.time() * 1000)
        start_ms, end_ms = spec.data.window(now_ms - now_ms % 60_000)
        result = ingest(
            store, IngestRequest(_SYNTHETIC, None, parts[1], parts[2], None, start_ms, end_ms)
        )
        done.append(f"{spec.data.reference}: {result.rows_added} added, {result.rows_total} stored")
    return done


def end_of_spec_windows(config: OrchestrationConfig) -> int | None:
    """The latest end (ms) of the specs' fixed data windows: where a replay starts to show
    the models a market they were not trained on. None when no spec has a fixed end."""
    ends = [load_spec(path).data.end_ms for path in discover_specs(config)]
    known = [end for end in ends if end is not None]
    return max(known) if known else None


def register_demo_bots(settings: Settings, timeframe: str = "1m") -> list[str]:
    """Add the demo bots that do not exist yet, trading `timeframe` candles; their holding
    and maker timeouts scale with the timeframe (a 1 s bot stands for a 1 m one when the
    replay plays 60 times faster). One line per bot."""
    scale = parse_timeframe(timeframe).seconds / _MODEL_TIMEFRAME_SECONDS
    upgrade_database(settings.resolved_database_url)
    engine = create_engine_for(settings.resolved_database_url)
    lines = []
    try:
        with session_scope(engine) as session:
            for bot in DEMO_BOTS:
                if get_bot(session, bot.name) is not None:
                    lines.append(f"{bot.name}: exists")
                    continue
                values = dict(bot.config)
                for name in ("max_holding_seconds", "maker_order_timeout_seconds"):
                    values[name] = float(values[name]) * scale
                config = parse_bot_config(values, bot=bot.name)
                new = NewBot(bot.name, bot.strategy, DEMO_SYMBOL, timeframe, config)
                add_bot(session, new, settings.strategies_dir.resolve())
                lines.append(f"{bot.name}: added ({bot.strategy}, {DEMO_SYMBOL} {timeframe})")
    finally:
        engine.dispose()
    return lines
