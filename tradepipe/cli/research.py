"""Research commands: features over a history (later also backtests, training, promotion)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tradepipe.cli.common import (
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

features_app = typer.Typer(help="Features over a candle history.", no_args_is_help=True)

DATA_HELP = "a candle file (CSV, klines, trades, capture) or a store key exchange/SYMBOL/timeframe"


class FeatureMode(StrEnum):
    BATCH = "batch"
    INCREMENTAL = "incremental"


def load_data(data: str, timeframe: str | None, symbol: str | None = None) -> CandleData:
    """Candles for a research command, from a file or the market data store."""
    from research.marketdata import IngestError, MarketDataStore
    from research.marketdata.load import load_candles

    current = settings()
    with user_errors((IngestError,)):
        store = MarketDataStore(current.resolved_market_data_dir)
        return load_candles(data, store=store, timeframe=timeframe, symbol=symbol)


def load_feature_spec(path: Path | None) -> FeatureSpec:
    """The feature spec in a TOML file, or the default spec."""
    import tomllib

    from pydantic import ValidationError

    from tradepipe.features import FeatureSpec, default_spec
    from tradepipe.validation import describe_validation_error

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
