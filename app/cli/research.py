"""Research commands: features over a history, backtests, training and promotion."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from app.cli.common import (
    UserError,
    console,
    settings,
    user_errors,
    write_timestamped_csv,
)

if TYPE_CHECKING:
    import pandas as pd

    from research.marketdata.load import CandleData
    from tradepipe.features import FeatureSpec
    from tradepipe.registry import LoadedModel

features_app = typer.Typer(help="Features over a candle history.", no_args_is_help=True)

DATA_HELP = "a candle file (CSV, klines, trades, capture) or a store key exchange/SYMBOL/timeframe"


class FeatureMode(StrEnum):
    BATCH = "batch"
    INCREMENTAL = "incremental"


def load_data(data: str, timeframe: str | None, symbol: str | None = None) -> CandleData:
    """Candles for a research command, from a file or the market data store."""
    from research.marketdata import IngestError
    from research.marketdata.load import load_candles
    from tradepipe.marketdata import MarketDataStore

    current = settings()
    with user_errors((IngestError,)):
        store = MarketDataStore(current.resolved_market_data_dir)
        return load_candles(data, store=store, timeframe=timeframe, symbol=symbol)


def load_feature_spec(path: Path | None) -> FeatureSpec:
    """The feature spec in a TOML file, or the default spec."""
    import tomllib

    from pydantic import ValidationError

    from tradepipe.features import FeatureSpec, default_spec
    from tradepipe.pydantic_errors import describe_validation_error

    if path is None:
        return default_spec()
    try:
        return FeatureSpec.from_toml(path.read_text())
    except OSError as error:
        raise UserError(f"{path}: cannot read the feature spec: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path}: not TOML: {error}") from None
    except ValidationError as error:
        raise UserError(
            f"{path}: invalid feature spec: {describe_validation_error(error)}"
        ) from None


def incremental_features(
    candles: pd.DataFrame, spec: FeatureSpec, symbol: str, timeframe: str
) -> pd.DataFrame:
    """The live path: one closed candle at a time through IncrementalFeatures."""
    import pandas as pd

    from tradepipe.candles import frame_to_candles
    from tradepipe.features import IncrementalFeatures

    state = IncrementalFeatures(spec)
    rows = [state.update(candle) for candle in frame_to_candles(candles, symbol, timeframe)]
    return pd.DataFrame(rows, columns=list(spec.feature_names), index=candles.index)


@features_app.command("compute")
def features_compute(
    data: Annotated[str, typer.Option(help=DATA_HELP)],
    out: Annotated[Path, typer.Option(help="CSV to write: timestamp, then one column a feature")],
    mode: Annotated[FeatureMode, typer.Option(help="batch (research) or incremental (live)")] = (
        FeatureMode.BATCH
    ),
    spec: Annotated[
        Path | None, typer.Option(help="feature spec TOML (default spec if not given)")
    ] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="candle timeframe (for trade files)")
    ] = None,
) -> None:
    """Compute features for every candle of a history, as research or as the live engine does."""
    from tradepipe.features import CandleDataError, compute_features

    with user_errors():
        feature_spec = load_feature_spec(spec)  # the cheap check first
    loaded = load_data(data, timeframe)
    with user_errors((CandleDataError,)):
        candles = loaded.candles
        if mode is FeatureMode.BATCH:
            features = compute_features(candles, feature_spec)
        else:
            features = incremental_features(
                candles, feature_spec, loaded.symbol, loaded.timeframe.name
            )
        features.insert(0, "start_ms", candles["start_ms"].to_numpy())
        write_timestamped_csv(features, out)
    console.print(
        f"wrote {len(features)} rows x {len(feature_spec.feature_names)} features "
        f"({mode.value}, spec {feature_spec.name} {feature_spec.content_hash[:12]}) to {out}"
    )


# --- backtests --------------------------------------------------------------------------


class Engine(StrEnum):
    FAST = "fast"
    BACKTRADER = "backtrader"


def backtest(
    strategy: Annotated[Path, typer.Option(help="strategy file, e.g. strategies/ema_rsi.py")],
    data: Annotated[str, typer.Option(help=DATA_HELP)],
    engine: Annotated[Engine, typer.Option(help="fast, or the backtrader reference")] = Engine.FAST,
    params: Annotated[str | None, typer.Option(help="strategy parameters as JSON")] = None,
    model: Annotated[str | None, typer.Option(help="models:/name@alias or models:/name/N")] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="candle timeframe (for trade files)")
    ] = None,
    trades_out: Annotated[Path | None, typer.Option(help="write the trade list as CSV")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the metrics as one JSON object")
    ] = (False),
) -> None:
    """Backtest a strategy file on history through the same state machine as live trading."""
    import json

    from research.backtest import BacktestError
    from research.backtest.strategy_file import backtest_strategy_file
    from research.marketdata import IngestError
    from tradepipe.marketdata import MarketDataStore
    from tradepipe.registry import ModelRegistry, RegistryError
    from tradepipe.strategy import StrategyLoadError, StrategyParameterError

    current = settings()
    errors = (BacktestError, IngestError, RegistryError, StrategyLoadError, StrategyParameterError)
    with user_errors(errors):
        registry = ModelRegistry.from_settings(current)
        loaded_model = None if model is None else registry.load_uri(model)
        result = backtest_strategy_file(
            strategy,
            data,
            engine=engine.value,
            params_json=params,
            model_uri=None
            if loaded_model is None
            else f"{loaded_model.name}/{loaded_model.version}",
            store=MarketDataStore(current.resolved_market_data_dir),
            timeframe=timeframe,
            predict=None if loaded_model is None else loaded_model.predict_defined,
            feature_spec=None if loaded_model is None else loaded_model.feature_spec(),
        )
        if trades_out is not None:
            try:
                trades_out.parent.mkdir(parents=True, exist_ok=True)
                result.trades_frame().to_csv(trades_out, index=False)
            except OSError as error:
                raise UserError(f"cannot write {trades_out}: {error.strerror}") from None
    metrics = result.metrics.to_dict()
    if as_json:
        print(json.dumps(metrics, sort_keys=True))
        return
    table = Table("metric", "value", title=f"{strategy.stem} on {data} ({engine.value})")
    for name, value in metrics.items():
        table.add_row(name, "n/a" if value is None else f"{value:.6g}")
    console.print(table)


def model_label(model: LoadedModel) -> str:
    """How orders and results name a model version: `name/version`."""
    return f"{model.name}/{model.version}"


# --- training and promotion -------------------------------------------------------------

research_app = typer.Typer(help="Train, validate and promote models.", no_args_is_help=True)
SPEC_HELP = "model spec TOML, e.g. research/specs/btcusdt_1m.toml"
SPEC_DATA_HELP = DATA_HELP + " (instead of the spec's)"


def _research_step(step: str, spec: Path, data: str | None) -> Any:
    import research.training as training

    with user_errors((training.ResearchError,)):
        workspace = training.Workspace.from_settings(settings())
        return getattr(training, step)(spec, data, workspace=workspace)


@research_app.command("train")
def research_train(
    spec: Annotated[Path, typer.Option(help=SPEC_HELP)],
    data: Annotated[str | None, typer.Option(help=SPEC_DATA_HELP)] = None,
) -> None:
    """Train a LightGBM model from a spec, log it to MLflow and register a version."""
    console.print(_research_step("train", spec, data).summary())


@research_app.command("validate")
def research_validate(
    spec: Annotated[Path, typer.Option(help=SPEC_HELP)],
    data: Annotated[str | None, typer.Option(help=SPEC_DATA_HELP)] = None,
) -> None:
    """Walk-forward validation of the version `train` registered for this spec and data."""
    console.print(_research_step("validate", spec, data).summary())


@research_app.command("promote")
def research_promote(
    spec: Annotated[Path, typer.Option(help=SPEC_HELP)],
    data: Annotated[str | None, typer.Option(help=SPEC_DATA_HELP)] = None,
) -> None:
    """Gate the validated version against the spec and the champion; promote or refuse."""
    console.print(_research_step("promote", spec, data).summary())


@research_app.command("run")
def research_run(
    spec: Annotated[Path, typer.Option(help=SPEC_HELP)],
    data: Annotated[str | None, typer.Option(help=SPEC_DATA_HELP)] = None,
) -> None:
    """Train, validate and promote in one go; prints the outcome and the model version."""
    outcome = _research_step("run", spec, data)
    for line in (outcome.train.summary(), outcome.validation.summary(), outcome.summary()):
        console.print(line)


@research_app.command("lookahead")
def research_lookahead(
    strategy: Annotated[Path, typer.Option(help="strategy file, e.g. strategies/ema_rsi.py")],
    spec: Annotated[
        Path | None, typer.Option(help=SPEC_HELP + ": its data, features, bot and fees")
    ] = None,
    data: Annotated[str | None, typer.Option(help=SPEC_DATA_HELP)] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="candle timeframe (for trade files)")
    ] = None,
    params: Annotated[str | None, typer.Option(help="strategy parameters as JSON")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="models:/name@alias or models:/name/N (default: the spec's champion)"),
    ] = None,
    cuts: Annotated[int, typer.Option(help="truncated histories to compare")] = 12,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Fail a strategy (or a feature) whose past changes when future candles are appended.

    Exit status 1 when anything changed, naming the feature or the decision and the candle."""
    import json

    from research.backtest import BacktestError
    from research.backtest.lookahead import check_lookahead
    from research.marketdata import IngestError
    from research.training import ResearchError
    from tradepipe.registry import RegistryError
    from tradepipe.strategy import StrategyLoadError, StrategyParameterError

    errors = (
        BacktestError,
        IngestError,
        RegistryError,
        ResearchError,
        StrategyLoadError,
        StrategyParameterError,
    )
    with user_errors(errors):
        inputs = _lookahead_inputs(strategy, spec, data, timeframe, params, model)
        report = check_lookahead(**inputs, cuts=cuts)
    if as_json:
        print(json.dumps(report.to_dict(), sort_keys=True))
    else:
        console.print(report.summary(), markup=False, highlight=False)
    if not report.passed:
        raise typer.Exit(1)


def _lookahead_inputs(
    strategy_file: Path,
    spec: Path | None,
    data: str | None,
    timeframe: str | None,
    params: str | None,
    model: str | None,
) -> dict[str, Any]:
    """check_lookahead's inputs: from the spec (its data, features, bot, fees, parameters
    and, for a model strategy, its champion) or from --data with the backtest defaults."""
    from research.backtest.strategy_file import default_config, parse_parameters
    from research.marketdata.load import load_candles
    from research.training.context import load_context
    from research.training.workspace import Workspace
    from tradepipe.marketdata import MarketDataStore
    from tradepipe.registry import ModelRegistry
    from tradepipe.strategy import load_strategy

    current = settings()
    loaded = load_strategy(strategy_file)
    inputs: dict[str, Any] = {"strategy": loaded}
    if spec is not None:
        context = load_context(spec, data, Workspace.from_settings(current))
        candles = context.data
        inputs.update(
            config=context.spec.bot_config,
            fees=context.costs.fees,
            parameters=dict(context.spec.strategy.parameters),
            feature_spec=context.spec.features,
        )
        if model is None and loaded.cls.model is not None:
            model = f"models:/{context.spec.registered_model}@champion"
    elif data is not None:
        store = MarketDataStore(current.resolved_market_data_dir)
        candles = load_candles(data, store=store, timeframe=timeframe)
        inputs["config"] = default_config(candles.timeframe)
    else:
        raise UserError("give --spec (its data, features and bot) or --data")
    if params is not None:
        inputs["parameters"] = parse_parameters(params)
    if model is not None:
        loaded_model = ModelRegistry.from_settings(current).load_uri(model)
        inputs["predict"] = loaded_model.predict_defined
        inputs["feature_spec"] = loaded_model.feature_spec() or inputs.get("feature_spec")
    inputs.update(candles=candles.candles, timeframe=candles.timeframe, symbol=candles.symbol)
    return inputs
