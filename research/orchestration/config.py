"""The orchestration config: what the DAGs ingest, which specs they train, where the engine is.

Embedded default (no file): synthetic BTCUSDT 1m candles, the specs in research/specs/, the
engine API at http://<host>:<engine_api_port> from Settings, strategy backtests on the last
7 days of synthetic/BTCUSDT/1m. A TOML file named by TRADEPIPE_ORCHESTRATION_CONFIG replaces
any of it; unknown keys are refused, so a misspelt key is an error and never a silent
default. Example (research/orchestration/orchestration.example.toml has the full one):

    specs_dir = "research/specs"

    [[market_data.series]]
    source = "ccxt"          # or "synthetic"
    exchange = "binance"
    symbol = "BTCUSDT"
    timeframes = ["1m", "1h"]

    [strategy_backtest]
    data = "binance/BTCUSDT/1m"
    days = 14

The config lives beside Settings rather than in it because it is the DAGs' business only;
relative paths resolve against the working directory (the project root), like Settings'.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from research.orchestration.common import OrchestrationError
from tradepipe.config import Settings, load_settings
from tradepipe.pydantic_errors import describe_validation_error
from tradepipe.timeframes import InvalidTimeframeError, parse_timeframe

__all__ = [
    "CONFIG_ENV",
    "MarketDataConfig",
    "OrchestrationConfig",
    "SeriesConfig",
    "StrategyBacktestConfig",
    "discover_specs",
    "engine_api_url",
    "load_orchestration_config",
]

CONFIG_ENV = "TRADEPIPE_ORCHESTRATION_CONFIG"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SeriesConfig(_Frozen):
    """One market ingested every interval, in each of its timeframes. Only sources that
    can deliver any range incrementally: the synthetic market and exchange REST (ccxt);
    files and captures are one-off imports (`tradepipe data ingest`)."""

    source: Literal["synthetic", "ccxt"] = "synthetic"
    exchange: str = ""  # empty: the source's default (synthetic: "synthetic", ccxt: "binance")
    symbol: Annotated[str, Field(min_length=1)] = "BTCUSDT"
    timeframes: tuple[str, ...] = Field(default=("1m",), min_length=1)
    seed: int = 7  # the synthetic market's seed (the demo's candles are seed 7)

    @field_validator("timeframes")
    @classmethod
    def _known_timeframes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return tuple(parse_timeframe(name).name for name in value)
        except InvalidTimeframeError as error:
            raise ValueError(str(error)) from None


class MarketDataConfig(_Frozen):
    series: tuple[SeriesConfig, ...] = (SeriesConfig(),)


class StrategyBacktestConfig(_Frozen):
    """The recent window every valid strategy is backtested on by `strategy_sync`."""

    data: Annotated[str, Field(min_length=1)] = "synthetic/BTCUSDT/1m"  # a store key or file
    days: float = Field(default=7.0, gt=0, le=366)


class OrchestrationConfig(_Frozen):
    specs_dir: Path = Path("research/specs")
    engine_api_url: str = ""  # empty: http://<Settings.host>:<Settings.engine_api_port>
    engine_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    market_data: MarketDataConfig = MarketDataConfig()
    strategy_backtest: StrategyBacktestConfig = StrategyBacktestConfig()


def load_orchestration_config(path: Path | None = None) -> OrchestrationConfig:
    """The config in `path`, else in the file TRADEPIPE_ORCHESTRATION_CONFIG names, else
    the embedded default; OrchestrationError names the file and the bad key."""
    if path is None:
        named = os.environ.get(CONFIG_ENV)
        if not named:
            return OrchestrationConfig()
        path = Path(named)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise OrchestrationError(f"{CONFIG_ENV}={path}: cannot read ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise OrchestrationError(f"{path}: not valid TOML ({error})") from None
    try:
        return OrchestrationConfig.model_validate(data)
    except ValidationError as error:
        problems = describe_validation_error(error, "config")
        raise OrchestrationError(f"{path}: {problems}") from None


def engine_api_url(config: OrchestrationConfig, settings: Settings | None = None) -> str:
    """Base URL of the live engine's control API, without a trailing slash."""
    if config.engine_api_url:
        return config.engine_api_url.rstrip("/")
    current = settings or load_settings()
    # A service bound to every interface is reached on loopback from the same machine.
    host = "127.0.0.1" if current.host in {"0.0.0.0", "::", ""} else current.host
    if ":" in host:  # an IPv6 address needs brackets in a URL
        host = f"[{host}]"
    return f"http://{host}:{current.engine_api_port}"


def discover_specs(config: OrchestrationConfig | None = None) -> list[str]:
    """Absolute paths of the *.toml specs in the configured folder, sorted: the map of
    model_lifecycle's per-spec task group. An empty folder maps to nothing (a run with no
    work). Here, not in `lifecycle`, so listing a folder does not import mlflow."""
    current = config or load_orchestration_config()
    folder = current.specs_dir.resolve()
    if not folder.is_dir():
        raise OrchestrationError(
            f"specs folder {folder} does not exist: set specs_dir in the orchestration config"
        )
    return [str(path) for path in sorted(folder.glob("*.toml")) if path.is_file()]
