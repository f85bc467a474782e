"""Configuration: one pydantic-settings object for the whole platform.

Precedence, highest first: environment variables `TRADEPIPE_<FIELD>`, then the TOML file
named by `TRADEPIPE_CONFIG` (default `tradepipe.toml` in the working directory, if present),
then the embedded defaults below, which keep every piece of state under `var/`.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, StringConstraints, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from tradepipe.notifications import NOTIFIER_NAME, NotifierSettings
from tradepipe.pydantic_errors import describe_validation_error

ENV_PREFIX = "TRADEPIPE_"
CONFIG_FILE_ENV = "TRADEPIPE_CONFIG"
DEFAULT_CONFIG_FILE = Path("tradepipe.toml")

# A TCP port; out-of-range values fail at startup naming the setting.
Port = Annotated[int, Field(ge=1, le=65_535)]


class ConfigError(ValueError):
    """A setting with a bad value; the message names the setting and how it was given."""


def config_file_path() -> Path | None:
    """The TOML file to read: TRADEPIPE_CONFIG if set (it must exist), else ./tradepipe.toml."""
    named = os.environ.get(CONFIG_FILE_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"{CONFIG_FILE_ENV}={named}: no such config file")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


class Settings(BaseSettings):
    """Every knob of the platform. Paths that are relative resolve against `home`'s parent
    working directory at load time, so all processes started from the project agree."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True
    )

    home: Path = Field(default=Path("var"), description="root of all local state")
    database_url: str = Field(
        default="", description="trading database; default SQLite at <home>/tradepipe.db"
    )
    mlflow_tracking_uri: str = Field(
        default="", description="MLflow store; default SQLite at <home>/mlflow/mlflow.db"
    )
    mlflow_artifact_root: Path | None = Field(default=None, description="<home>/mlflow/artifacts")
    airflow_home: Path | None = Field(default=None, description="default <home>/airflow")
    market_data_dir: Path | None = Field(default=None, description="default <home>/market_data")
    strategies_dir: Path = Field(default=Path("strategies"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    host: str = Field(default="127.0.0.1", description="address every local service binds")
    mlflow_port: Port = 5000
    airflow_port: Port = 8080
    engine_api_port: Port = 8700
    dashboard_port: Port = 8501
    replay_port: Port = 8765
    replay_rest_port: Port = 8766  # the replay's Binance-style REST side (kline backfill)

    ccxt_timeout_seconds: float = Field(default=10.0, gt=0)
    # Required when the dashboard listens on anything but loopback; never printed.
    dashboard_password: SecretStr | None = None
    # Bearer token of the engine's control API; without it control routes are refused.
    engine_api_token: SecretStr | None = None

    # The live engine. Unset values keep the engine's own defaults (live/engine/config.py);
    # the feed defaults to the local replay (ws://host:replay_port); production Binance is
    # feed_url = "wss://stream.binance.com:9443", feed_rest_url = "https://api.binance.com".
    feed_url: str | None = None
    feed_rest_url: str | None = None
    engine_heartbeat_seconds: float | None = Field(default=None, gt=0)
    # several engines on one PostgreSQL database: lease TTL and bots per engine
    engine_lease_ttl_seconds: float | None = Field(default=None, gt=0)
    engine_max_bots: int | None = Field(default=None, ge=1)
    engine_bot_reload_seconds: float | None = Field(default=None, gt=0)
    engine_model_poll_seconds: float | None = Field(default=None, gt=0)
    # events a client of the engine's /ws/events may have unread before it is dropped
    engine_events_queue_size: int = Field(default=1000, ge=1, le=1_000_000)
    paper_slippage_bps: float | None = Field(default=None, ge=0)
    # Risk (README, "Risk limits"): quote currency all bots of an engine may commit (None:
    # no cap); venue errors in a row that stop a bot's entries, and for how long.
    risk_max_total_exposure: float | None = Field(default=None, gt=0, le=1e15)
    risk_venue_error_limit: int | None = Field(default=None, ge=1, le=1_000)
    risk_venue_cooldown_seconds: float | None = Field(default=None, gt=0, le=86_400)
    paper_maker_fee_rate: float | None = Field(default=None, ge=0, lt=1)
    paper_taker_fee_rate: float | None = Field(default=None, ge=0, lt=1)
    # Strategy files (the engine watches strategies_dir): bots of a deleted strategy move
    # to default_strategy; saves apply after strategy_debounce_seconds of quiet; a new
    # version must pass its smoke run within strategy_smoke_budget_seconds; a live
    # decision over strategy_call_budget_seconds puts its bot in error.
    default_strategy: str | None = Field(default=None, min_length=1)
    strategy_debounce_seconds: float | None = Field(default=None, ge=0, le=10)
    strategy_smoke_budget_seconds: float | None = Field(default=None, gt=0)
    strategy_call_budget_seconds: float | None = Field(default=None, gt=0)
    # Testnet and live bots trade on Binance spot through ccxt. The URLs replace Binance's
    # REST base (https://testnet.binance.vision, https://api.binance.com), e.g. to point
    # testnet bots at the local exchange simulator; `ccxt_timeout_seconds` bounds a request.
    exchange_testnet_url: str | None = None
    exchange_live_url: str | None = None
    exchange_poll_seconds: float | None = Field(default=None, gt=0)  # order status polling
    # Each take-profit of a testnet or live bot rests at the venue as an OCO with its
    # position's stop-loss (a stop-limit this many percent beyond the stop); false: the
    # engine alone watches the stop.
    exchange_venue_protection: bool | None = None
    exchange_stop_limit_pct: float | None = Field(default=None, gt=0, lt=50)
    engine_reconcile_seconds: float | None = Field(default=None, gt=0)  # venue vs database
    # The feed's trade checks and liveness (live/feeds/sanity.py, README "Market data"):
    # unset keeps the engine's defaults.
    feed_silence_seconds: float | None = Field(default=None, gt=0)
    feed_max_future_seconds: float | None = Field(default=None, gt=0)
    feed_max_backward_seconds: float | None = Field(default=None, gt=0)
    feed_max_time_jump_seconds: float | None = Field(default=None, gt=0)
    feed_max_id_jump: int | None = Field(default=None, gt=4096)
    feed_price_band: float | None = Field(default=None, gt=0, lt=1)
    feed_max_quantity_ratio: float | None = Field(default=None, gt=1)
    feed_max_message_bytes: int | None = Field(default=None, ge=1024, le=2**22)
    # Evidence of live trading, for the review against a backtest: the engine's candles
    # go to the candle store (market_data_dir) as exchange `record_exchange`, its decisions
    # to day partitions under decision_log_dir, kept `decision_retention_days`.
    record_candles: bool = True
    record_decisions: bool = True
    record_exchange: str = Field(default="binance-live", pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    decision_retention_days: int = Field(default=30, ge=1)
    decision_log_dir: Path | None = Field(default=None, description="default <home>/decisions")
    # Live model quality per version from that evidence, in the engine's /metrics: every
    # engine_quality_seconds (0: off) over the last engine_quality_window_seconds.
    engine_quality_seconds: float | None = Field(default=None, ge=0)
    engine_quality_window_seconds: float | None = Field(default=None, gt=0)
    # the engine's write journal (live/engine/journal.py); default beside the SQLite file
    engine_journal_dir: Path | None = None

    # Secrets and notifications (tradepipe/secrets.py, tradepipe/notifications.py). Configs
    # name secrets; values come from the environment or this file outside the repository.
    secrets_file: Path | None = Field(default=None, description="dotenv or TOML, mode 600")
    # The second confirmation live trading needs, besides each bot's own opt-in.
    allow_live_trading: bool = False
    # name -> notifier; bots list the names they notify through. From the environment as
    # JSON: TRADEPIPE_NOTIFIERS='{"ops": {"type": "telegram", "token_secret": "TG_TOKEN",
    # "chat_id_secret": "TG_CHAT"}}'; in TOML as [notifiers.ops] tables.
    notifiers: dict[Annotated[str, StringConstraints(pattern=NOTIFIER_NAME)], NotifierSettings] = (
        Field(default_factory=dict)
    )

    @field_validator("database_url", "mlflow_tracking_uri")
    @classmethod
    def _looks_like_url(cls, value: str) -> str:
        if value and "://" not in value:
            raise ValueError("expected a SQLAlchemy URL such as sqlite:///var/x.db")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = config_file_path()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    # Derived locations: the embedded defaults all live under `home`.
    @cached_property
    def state_dir(self) -> Path:
        return self.home.resolve()

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'tradepipe.db'}"

    @cached_property
    def resolved_feed_rest_url(self) -> str:
        """The venue's REST side: feed_rest_url, else the local replay's."""
        return self.feed_rest_url or f"http://{self.host}:{self.replay_rest_port}"

    @cached_property
    def resolved_mlflow_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.state_dir / 'mlflow' / 'mlflow.db'}"

    @cached_property
    def resolved_mlflow_artifact_root(self) -> Path:
        return (self.mlflow_artifact_root or self.state_dir / "mlflow" / "artifacts").resolve()

    @cached_property
    def resolved_airflow_home(self) -> Path:
        return (self.airflow_home or self.state_dir / "airflow").resolve()

    @cached_property
    def resolved_market_data_dir(self) -> Path:
        return (self.market_data_dir or self.state_dir / "market_data").resolve()

    @cached_property
    def resolved_decision_log_dir(self) -> Path:
        return (self.decision_log_dir or self.state_dir / "decisions").resolve()


def _describe_setting(item: ErrorDetails, field: str) -> str:
    env_name = ENV_PREFIX + str(item["loc"][0] if item["loc"] else field).upper()
    if item["type"] == "extra_forbidden":
        return f"unknown setting {field!r} (check the spelling in the config file)"
    return f"invalid setting {field} ({env_name}): {item['msg']}"


def load_settings(**overrides: object) -> Settings:
    """Load and validate settings; a bad value raises ConfigError naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, "settings", _describe_setting)) from None
    except SettingsError as error:  # a structured setting (notifiers) from the env is JSON
        named = re.search(r'field "(\w+)"', str(error))
        field = named.group(1) if named else "settings"
        raise ConfigError(
            f"invalid setting {field} ({ENV_PREFIX}{field.upper()}): not valid JSON"
        ) from None
