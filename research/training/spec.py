"""Model specs: one TOML file says what to train, how to validate it and when to promote it.

A spec is the whole recipe of a registered model: data, features, label barriers, LightGBM
parameters, walk-forward layout, the strategy that consumes the model with the bot config
its backtests use, and the promotion gates. It is data, hashed canonically, so that a run is
keyed by (spec, data, strategy) and re-running the same recipe finds the same model.

Every section is a frozen pydantic model that refuses unknown keys: a misspelt LightGBM
parameter (`num_leafs`) is an error naming the field and the file, never a silent default.
Relative paths (the strategy file) resolve against the working directory, the project root,
when used: the hash covers the path as written, the strategy's content hash covers its code.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
import typing
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from research.training.errors import SpecError
from tradepipe.botconfig import BotConfig
from tradepipe.costs import TradingCosts
from tradepipe.features import FeatureSpec, default_spec
from tradepipe.guard import GuardRails
from tradepipe.pydantic_errors import describe_validation_error
from tradepipe.timeframes import InvalidTimeframeError, Timeframe, parse_timeframe

__all__ = ["ModelSpec", "PromotionSection", "load_spec", "parse_spec"]

_Fraction = Annotated[float, Field(gt=0, lt=1)]
_Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataSection(_Section):
    """Where the candles come from: a store key (exchange/SYMBOL/timeframe) or a file path,
    and either a fixed [start, end) range in UTC (dates or date-times, each optional) or a
    relative one, `lookback_days` ending where the run's data ends: a scheduled run then
    trains on the recent market, not on a window that ages."""

    reference: str = Field(min_length=1)
    start: date | datetime | None = None
    end: date | datetime | None = None
    lookback_days: float | None = Field(None, gt=0, le=3650)

    def window(self, until_ms: int | None = None) -> tuple[int | None, int | None]:
        """[start, end) in ms of the candles a run trains on. `until_ms` is where the run's
        data ends (its data interval end, or now): it caps `end`, and a `lookback_days`
        window ends there (ValueError without it)."""
        end = self.end_ms
        if until_ms is not None:
            end = until_ms if end is None else min(end, until_ms)
        if self.lookback_days is None:
            return self.start_ms, end
        if end is None:
            raise ValueError("a lookback_days window needs the time the run's data ends")
        return end - round(self.lookback_days * 86_400_000), end

    @property
    def start_ms(self) -> int | None:
        return _to_ms(self.start)

    @property
    def end_ms(self) -> int | None:
        return _to_ms(self.end)

    @model_validator(mode="after")
    def _ordered(self) -> DataSection:
        if self.start_ms is not None and self.end_ms is not None and self.end_ms <= self.start_ms:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        if self.lookback_days is not None and self.start is not None:
            raise ValueError("give start or lookback_days, not both")
        return self


class LabelSection(_Section):
    """Triple-barrier label: 1 when a long opened at the next open hits take-profit first.
    The bot config of the backtests uses the same barriers: what the model learns is what
    the bot trades."""

    take_profit_pct: float = Field(gt=0, lt=100)
    stop_loss_pct: float = Field(gt=0, lt=100)
    max_holding_seconds: float = Field(gt=0)
    # the bot's trailing stop, which the labels then follow (tradepipe.orders.trailing)
    trailing_stop_pct: float | None = Field(None, gt=0, lt=100)


class LightGBMParams(_Section):
    """The LightGBM parameters a spec may set; the objective is always binary.

    A closed list rather than a free mapping: a misspelt key must fail loudly.
    """

    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(31, ge=2, le=131_072)
    max_depth: int = Field(-1, ge=-1)
    min_data_in_leaf: int = Field(20, ge=1)
    feature_fraction: float = Field(1.0, gt=0, le=1)
    bagging_fraction: float = Field(1.0, gt=0, le=1)
    bagging_freq: int = Field(0, ge=0)
    lambda_l1: float = Field(0.0, ge=0)
    lambda_l2: float = Field(0.0, ge=0)
    min_gain_to_split: float = Field(0.0, ge=0)
    seed: int = 7
    # One thread by default: on a shared machine LightGBM's OpenMP threads spin-wait for
    # each other, and two threads on two busy cores ran a fit 8x slower than one.
    num_threads: int = Field(1, ge=0, description="0 lets OpenMP decide")

    def booster_params(self) -> dict[str, Any]:
        """Parameters for `lightgbm.train`: deterministic, quiet, binary."""
        return self.model_dump() | {
            "objective": "binary",
            # Early stopping reads this one metric: another would be computed on the
            # early-stopping rows every round (AUC sorts them) and thrown away.
            "metric": ["binary_logloss"],
            "verbosity": -1,
            "deterministic": True,
            "force_row_wise": True,
        }


class TrainingSection(_Section):
    """The final model: trained on all rows before the validation window (the newest
    `validation_fraction`), early-stopped on the newest `early_stopping_fraction` of its
    own training rows so that the validation window stays unseen."""

    validation_fraction: float = Field(0.2, ge=0.05, le=0.5)
    early_stopping_fraction: float = Field(0.2, ge=0.05, le=0.5)
    early_stopping_rounds: int = Field(50, ge=1)
    num_boost_round: int = Field(500, ge=1, le=100_000)


class WalkForwardSection(_Section):
    """Rolling-origin validation: the rows split into `folds + 1` equal blocks in time; fold
    i trains on everything before block i (purged and embargoed) and tests on block i."""

    folds: int = Field(4, ge=1, le=50)
    purge_seconds: float = Field(ge=0)
    embargo_seconds: float = Field(ge=0)


class BotSection(_Section):
    """The bot config of every backtest, minus the barriers (they come from [labels])."""

    capital_per_trade: float = Field(1_000.0, gt=0)
    confidence_threshold: float = Field(0.5, gt=0, lt=1)
    maker_order_timeout_seconds: float = Field(60.0, gt=0)
    max_open_positions: int = Field(1, ge=1)


class StrategySection(_Section):
    """The strategy file that consumes the model, its parameters and the bot it runs as."""

    file: Path
    parameters: dict[str, Any] = Field(default_factory=dict)
    bot: BotSection = Field(default_factory=BotSection)

    def resolved_file(self) -> Path:
        return self.file if self.file.is_absolute() else Path.cwd() / self.file


class FeeSection(_Section):
    """Costs this spec adds to its venue's: every backtest of the spec pays, per component,
    the larger of these and the venue's (`ModelSpec.trading_costs`), so a spec can make its
    gates stricter (a venue tier with higher fees, more slippage) but never cheaper than the
    costs its bots trade at. Rates are fractions of the notional, slippage is in basis
    points on market orders."""

    maker_rate: float = Field(0.0, ge=0, lt=1)
    taker_rate: float = Field(0.0, ge=0, lt=1)
    slippage_bps: float = Field(0.0, ge=0, lt=10_000)


class GatesSection(_Section):
    """What a candidate must achieve to become champion.

    Out-of-sample figures come from the walk-forward folds: trades summed over folds, Sharpe
    and profit factor as the median fold (one lucky fold cannot carry a model), drawdown as
    the worst fold. `compare_metric` must beat the current champion's by `min_improvement`
    on the candidate's validation window, both backtested the same way. The look-ahead
    check runs on that window with `lookahead_cuts` truncated histories (always on: a
    strategy or model that sees the future cannot be promoted at any setting).
    """

    min_trades: int = Field(10, ge=0)
    min_sharpe: float | None = None
    min_profit_factor: float | None = Field(None, ge=0)
    max_drawdown: float = Field(0.25, gt=0, le=1)
    min_improvement: float = Field(0.0, ge=0)
    compare_metric: Literal["sharpe", "sortino", "total_return", "profit_factor"] = "sharpe"
    lookahead_cuts: int = Field(6, ge=1, le=200)

    @model_validator(mode="after")
    def _has_performance_gate(self) -> GatesSection:
        if self.min_sharpe is None and self.min_profit_factor is None:
            raise ValueError("set min_sharpe or min_profit_factor (or both)")
        return self


class PromotionSection(_Section):
    """How a version that passes the gates is promoted.

    `champion` (the default): it becomes champion at once. `shadow`: it becomes `challenger`
    and the champion stays; the live engine runs the challenger in shadow beside the
    champion (paper fills, never sent) and the lifecycle DAG's shadow gate promotes it only
    once it has run `min_days` and taken `min_decisions` decisions (summed over its bots),
    has at least `min_trades` closed shadow trades, and its net return per trade after
    costs beats the champion's live one on the same bots and window by `min_improvement`
    (a fraction: 0.0005 is 0.05 % a trade); else it is refused and the alias removed.
    A challenger still in shadow is not replaced by a newer candidate until it is judged.
    """

    mode: Literal["champion", "shadow"] = "champion"
    min_days: float = Field(7.0, gt=0)
    min_decisions: int = Field(500, ge=1)
    min_trades: int = Field(10, ge=1)
    min_improvement: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _shadow_settings_need_shadow_mode(self) -> PromotionSection:
        defaults = PromotionSection.model_fields
        shadow_only = sorted(
            name
            for name in self.model_fields_set - {"mode"}
            if getattr(self, name) != defaults[name].default
        )
        if self.mode == "champion" and shadow_only:
            raise ValueError(
                f'{", ".join(shadow_only)} apply to mode = "shadow" only: set '
                'mode = "shadow" or remove them'
            )
        return self

    @property
    def shadow(self) -> bool:
        return self.mode == "shadow"


class ModelSpec(_Section):
    """A whole model recipe; see the module docstring and research/specs/btcusdt_1m.toml."""

    name: _Name
    registered_model: _Name
    experiment: _Name | None = None
    symbol: str = Field(min_length=1, pattern=r"^[A-Z0-9]+$")
    timeframe: str
    data: DataSection
    features: FeatureSpec = Field(default_factory=default_spec)
    labels: LabelSection
    lightgbm: LightGBMParams = Field(default_factory=LightGBMParams)
    training: TrainingSection = Field(default_factory=TrainingSection)
    walk_forward: WalkForwardSection
    strategy: StrategySection
    fees: FeeSection = Field(default_factory=FeeSection)
    gates: GatesSection
    # live guard rails of every version this spec registers (tradepipe.guard); none: unguarded
    guard: GuardRails | None = None
    promotion: PromotionSection = Field(default_factory=PromotionSection)

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        try:
            return parse_timeframe(value).name
        except InvalidTimeframeError as error:
            raise ValueError(str(error)) from None

    @model_validator(mode="after")
    def _gaps_cover_the_label_horizon(self) -> ModelSpec:
        # A training row's label looks max_holding_seconds past its decision: a shorter
        # purge lets fold models train on prices inside their own test window.
        horizon = self.labels.max_holding_seconds
        for field in ("purge_seconds", "embargo_seconds"):
            value = getattr(self.walk_forward, field)
            if value < horizon:
                raise ValueError(
                    f"walk_forward.{field} = {value:g} is shorter than the label horizon "
                    f"labels.max_holding_seconds = {horizon:g}: set it to at least {horizon:g}"
                )
        return self

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.registered_model

    @property
    def parsed_timeframe(self) -> Timeframe:
        return parse_timeframe(self.timeframe)

    def trading_costs(self, venue: TradingCosts) -> TradingCosts:
        """The costs this spec's backtests pay: the venue's, raised by [fees] where higher."""
        return venue.at_least(TradingCosts(**self.fees.model_dump()))

    @property
    def bot_config(self) -> BotConfig:
        """The bot every backtest of this spec runs as, barriers from [labels]."""
        return BotConfig(
            capital_per_trade=self.strategy.bot.capital_per_trade,
            take_profit_pct=self.labels.take_profit_pct,
            stop_loss_pct=self.labels.stop_loss_pct,
            max_holding_seconds=self.labels.max_holding_seconds,
            trailing_stop_pct=self.labels.trailing_stop_pct,
            maker_order_timeout_seconds=self.strategy.bot.maker_order_timeout_seconds,
            max_open_positions=self.strategy.bot.max_open_positions,
            confidence_threshold=self.strategy.bot.confidence_threshold,
            model_name=self.registered_model,
        )

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the canonical JSON of the whole spec (feature spec by its own hash,
        which also covers the feature implementation version). [promotion] is left out: it
        says what happens to a version once gated, not what the version is."""
        body = self.model_dump(mode="json", exclude={"features", "promotion"})
        body["features"] = self.features.content_hash
        if body["labels"]["trailing_stop_pct"] is None:  # specs from before it hash as before
            del body["labels"]["trailing_stop_pct"]
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()

    def flat_params(self) -> dict[str, str]:
        """Every setting as a flat `section.key -> text` mapping, for MLflow params."""
        flat: dict[str, str] = {}
        body = self.model_dump(mode="json", exclude={"features"})
        _flatten(body, "", flat)
        flat["features.hash"] = self.features.content_hash
        flat["features.count"] = str(len(self.features.feature_names))
        return flat


def load_spec(path: str | Path) -> ModelSpec:
    """Read and validate a spec file; SpecError names the file and every bad field."""
    spec_path = Path(path)
    try:
        text = spec_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{spec_path}: no such spec file") from None
    except OSError as error:
        raise SpecError(f"{spec_path}: cannot read ({error.strerror or error})") from None
    return parse_spec(text, source=str(spec_path))


def parse_spec(text: str, *, source: str = "<spec>") -> ModelSpec:
    """Validate spec TOML text; `source` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{source}: not valid TOML ({error})") from None
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(
            f"{source}: {describe_validation_error(error, '', _describe_problem)}"
        ) from None


def _describe_problem(item: ErrorDetails, where: str) -> str:
    if item["type"] == "extra_forbidden":
        allowed = _allowed_fields(item["loc"][:-1])
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown field {where!r}{hint}"
    if item["type"] == "missing":
        return f"missing field {where!r}"
    message = str(item["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _allowed_fields(location: tuple[int | str, ...]) -> list[str]:
    """Field names of the model at `location` inside ModelSpec (empty if not a model)."""
    model: Any = ModelSpec
    for part in location:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = field.annotation if field is not None else None
        # an optional section (`GuardRails | None`) lists the fields of its model
        models = [a for a in typing.get_args(annotation) if isinstance(a, type)]
        if models and issubclass(models[0], BaseModel):
            annotation = models[0]
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _flatten(value: Any, prefix: str, into: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), into)
    else:
        into[prefix] = json.dumps(value) if isinstance(value, list | dict) else str(value)


def _to_ms(moment: date | datetime | None) -> int | None:
    """UTC milliseconds; a date is its midnight, a naive date-time is taken as UTC."""
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
