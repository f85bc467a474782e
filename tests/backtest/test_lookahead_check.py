"""The look-ahead check: the shipped strategies pass on real prices; a strategy that peeks
at the next candle, and a model that reads the next row, are refused, naming the candle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli import app
from research.backtest.lookahead import check_lookahead
from research.backtest.strategy_file import default_config
from tests.backtest.conftest import STRATEGIES
from tradepipe.strategy import LoadedStrategy, load_strategy
from tradepipe.timeframes import parse_timeframe

HOUR = parse_timeframe("1h")
COINBASE = "coinbase_btcusd_1h_2017-2019.csv.gz"

# Reaches around its frozen context into the backtester's frames for the candle frame and
# enters when the next candle closes higher: a perfect, impossible strategy.
PEEKING = """
import sys

import pandas as pd

from tradepipe.strategy import Enter, Strategy, StrategyParameters


class Peek(Strategy[StrategyParameters]):
    Parameters = StrategyParameters

    def on_candle(self, context):
        frame = sys._getframe(1)
        while frame is not None:
            for value in frame.f_locals.values():
                if isinstance(value, pd.DataFrame) and "close" in value.columns:
                    later = value[value["start_ms"] > context.candle.start_ms]
                    if len(later) and later["close"].iloc[0] > context.candle.close * 1.002:
                        return Enter(reason="knows the next close")
                    return None
            frame = frame.f_back
        return None
"""


@pytest.fixture
def peeking(tmp_path: Path) -> LoadedStrategy:
    path = tmp_path / "peek.py"
    path.write_text(PEEKING)
    return load_strategy(path)


@pytest.mark.shared_data
def test_a_shipped_strategy_passes_on_real_prices(
    btc_hourly: pd.DataFrame, ema_rsi: LoadedStrategy
) -> None:
    candles = btc_hourly.iloc[:4000]
    report = check_lookahead(candles, ema_rsi, default_config(HOUR), timeframe=HOUR, cuts=8)
    assert report.passed, report.summary()
    assert len(report.cuts) == 8
    assert report.decisions_checked > 1000  # every candle's answer compared, entries too


@pytest.mark.shared_data
def test_the_model_strategy_passes_with_a_row_wise_model(
    btc_hourly: pd.DataFrame, lgbm_threshold: LoadedStrategy
) -> None:
    def predict(features: pd.DataFrame) -> np.ndarray:  # depends on its own row only
        return 1 / (1 + np.exp(-20 * features["ret_3"].to_numpy()))

    report = check_lookahead(
        btc_hourly.iloc[:3000], lgbm_threshold, default_config(HOUR), timeframe=HOUR,
        predict=predict, cuts=6,
    )  # fmt: skip
    assert report.passed, report.summary()


@pytest.mark.shared_data
def test_a_strategy_that_peeks_at_the_next_candle_is_refused(
    btc_hourly: pd.DataFrame, peeking: LoadedStrategy
) -> None:
    report = check_lookahead(btc_hourly.iloc[:2000], peeking, default_config(HOUR), timeframe=HOUR)
    assert not report.passed
    assert not report.features and not report.probabilities_changed  # the features are fine
    # At a cut just after an entry, the last candle's entry disappears: it needed the future.
    changed = report.decisions[0]
    assert changed.time == changed.cut_time
    assert changed.with_whole_history.startswith("Enter(")
    assert changed.with_history_ending_at_cut == "no entry"
    assert "FAILED" in report.summary() and changed.time in report.summary()


@pytest.mark.shared_data
def test_a_model_that_reads_the_next_row_is_refused(
    btc_hourly: pd.DataFrame, lgbm_threshold: LoadedStrategy
) -> None:
    def leaky(features: pd.DataFrame) -> np.ndarray:
        upcoming = features["ret_1"].shift(-1).fillna(0.0).to_numpy()
        return (upcoming > 0).astype(float)

    report = check_lookahead(
        btc_hourly.iloc[:2000], lgbm_threshold, default_config(HOUR), timeframe=HOUR,
        predict=leaky, cuts=4,
    )  # fmt: skip
    assert not report.passed
    assert report.probabilities_changed and set(report.probabilities_changed) <= set(report.cuts)
    assert report.decisions  # and the entries it caused


@pytest.mark.shared_data
def test_the_command_exits_1_for_a_peek_and_0_for_a_clean_strategy(
    shared_data: Path, peeking: LoadedStrategy, tmp_path: Path
) -> None:
    runner = CliRunner()
    data = str(tmp_path / "btcusd_1h.csv")  # three months: the peek scans frames per candle
    pd.read_csv(shared_data / COINBASE).iloc[:2000].to_csv(data, index=False)
    clean = runner.invoke(
        app, ["research", "lookahead", "--strategy", str(STRATEGIES / "ema_rsi.py"),
              "--data", data, "--cuts", "4", "--json"],
    )  # fmt: skip
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout)["passed"] is True
    caught = runner.invoke(
        app, ["research", "lookahead", "--strategy", str(peeking.path), "--data", data,
              "--cuts", "4"],
    )  # fmt: skip
    assert caught.exit_code == 1
    assert "FAILED" in caught.stdout and "but no entry with the history ending at" in caught.stdout


def test_the_command_needs_data_or_a_spec() -> None:
    result = CliRunner().invoke(
        app, ["research", "lookahead", "--strategy", str(STRATEGIES / "ema_rsi.py")]
    )
    assert result.exit_code != 0
    assert "give --spec" in result.output
