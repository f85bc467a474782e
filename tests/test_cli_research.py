"""Research commands of the CLI on real data: features batch and incremental agree."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli import app
from tradepipe.features import default_spec

runner = CliRunner()
COINBASE = "coinbase_btcusd_1h_2017-2019.csv.gz"


@pytest.mark.shared_data
def test_features_batch_and_incremental_write_identical_files(
    shared_data: Path, tmp_path: Path
) -> None:
    outputs = {}
    for mode in ("batch", "incremental"):
        out = tmp_path / f"{mode}.csv"
        result = runner.invoke(
            app, ["features", "compute", "--data", str(shared_data / COINBASE), "--mode", mode,
                  "--out", str(out)],
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        outputs[mode] = out.read_bytes()
    assert outputs["batch"] == outputs["incremental"]
    table = pd.read_csv(tmp_path / "batch.csv")
    assert list(table.columns) == ["timestamp", *default_spec().feature_names]
    assert len(table) == len(pd.read_csv(shared_data / COINBASE)) - 28  # zero-volume fillers


def test_features_from_a_store_key_with_a_custom_spec(tmp_path: Path) -> None:
    ingest = ["data", "ingest", "--source", "synthetic", "--symbol", "BTCUSDT", "--timeframe",
              "1h", "--start", "2024-01-01", "--end", "2024-01-05"]  # fmt: skip
    assert runner.invoke(app, ingest).exit_code == 0
    spec = tmp_path / "small.toml"
    spec.write_text(
        'name = "small"\nreturn_horizons = [1, 2]\nsma_windows = [3]\nema_spans = []\n'
        "volatility_windows = []\nrsi_periods = []\nmomentum_periods = []\nvolume_windows = []\n"
        "taker_net_flow = true\ntaker_flow_windows = []\ncandle_shape = false\n"
    )
    out = tmp_path / "f.csv"
    result = runner.invoke(
        app, ["features", "compute", "--data", "synthetic/BTCUSDT/1h", "--spec", str(spec),
              "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == ["timestamp", "ret_1", "ret_2", "close_sma_3", "taker_net_flow"]
    assert len(table) == 96


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--data", "nowhere.csv"], "nowhere.csv: no such file"),
        (["--data", "synthetic/NOPE/1h"], "no such stored series"),
        (["--data", "synthetic/BTCUSDT/1h", "--spec", "missing.toml"], "missing.toml"),
    ],
)
def test_bad_features_input_is_one_line(args: list[str], fragment: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["features", "compute", *args, "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error:") and fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_spec_with_an_unknown_field_names_it(tmp_path: Path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text("return_horizon = [1]\n")
    result = runner.invoke(
        app, ["features", "compute", "--data", "x/Y/1h", "--spec", str(spec), "--out", "o.csv"]
    )
    assert result.exit_code == 1 and "return_horizon" in result.stderr


REPO = Path(__file__).resolve().parents[1]
DEMO_SPEC = REPO / "research" / "specs" / "btcusdt_1m.toml"


def _ingest_synthetic(start: str, end: str) -> None:
    args = ["data", "ingest", "--source", "synthetic", "--symbol", "BTCUSDT", "--timeframe", "1m",
            "--start", start, "--end", end]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr


def test_backtest_prints_json_metrics_and_writes_the_trade_list(tmp_path: Path) -> None:
    _ingest_synthetic("2024-01-01", "2024-01-04")
    out = tmp_path / "trades.csv"
    result = runner.invoke(
        app, ["backtest", "--strategy", str(REPO / "strategies" / "ema_rsi.py"),
              "--data", "synthetic/BTCUSDT/1m", "--json", "--trades-out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)
    trades = pd.read_csv(out)
    assert metrics["trades"] == len(trades) > 0
    assert list(trades.columns) == [
        "entry_time", "exit_time", "side", "entry_price", "exit_price", "quantity",
        "exit_reason", "pnl", "fees",
    ]  # fmt: skip


def test_backtest_bad_inputs_are_one_line(tmp_path: Path) -> None:
    _ingest_synthetic("2024-01-01", "2024-01-02")
    broken = tmp_path / "broken.py"
    broken.write_text("from tradepipe.strategy import Strategy\n\nx = (\n")
    cases = [
        (["--strategy", str(broken)], "broken.py:3"),
        (["--strategy", str(REPO / "strategies" / "ema_rsi.py"), "--params", "{bad"], "JSON"),
        (["--strategy", str(REPO / "strategies" / "ema_rsi.py"), "--params", '{"rsi": 1}'],
         "rsi: Extra inputs are not permitted"),
        (["--strategy", str(REPO / "strategies" / "lgbm_threshold.py")], "give a model"),
        (["--strategy", str(REPO / "strategies" / "lgbm_threshold.py"), "--model", "nope"],
         "models:/<name>@<alias>"),
    ]  # fmt: skip
    for args, fragment in cases:
        result = runner.invoke(app, ["backtest", *args, "--data", "synthetic/BTCUSDT/1m"])
        assert result.exit_code == 1, (args, result.stdout)
        assert result.stderr.startswith("error:") and fragment in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_research_run_on_the_demo_spec_promotes_then_backtests_the_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The spec names its strategy file relative to the project root, as a user runs it.
    monkeypatch.setenv("TRADEPIPE_HOME", str(tmp_path / "var"))
    monkeypatch.chdir(REPO)
    _ingest_synthetic("2024-01-01", "2024-02-16")
    result = runner.invoke(app, ["research", "run", "--spec", str(DEMO_SPEC)])
    assert result.exit_code == 0, result.stderr
    assert "promoted to champion" in result.stdout or "refused" in result.stdout
    version = result.stdout.split("version ")[1].split()[0]
    again = runner.invoke(app, ["research", "run", "--spec", str(DEMO_SPEC)])
    assert again.exit_code == 0 and f"version {version}" in again.stdout  # idempotent
    backtest = runner.invoke(
        app, ["backtest", "--strategy", str(REPO / "strategies" / "lgbm_threshold.py"),
              "--data", "synthetic/BTCUSDT/1m", "--model",
              "models:/btcusdt_1m_triple_barrier@champion", "--json"],
    )  # fmt: skip
    if "promoted to champion" in result.stdout:
        assert backtest.exit_code == 0, backtest.stderr
        assert json.loads(backtest.stdout)["trades"] > 0


def test_research_spec_with_an_unknown_field_is_named(tmp_path: Path) -> None:
    spec = tmp_path / "typo.toml"
    spec.write_text(DEMO_SPEC.read_text() + "\nlearning_rat = 0.1\n")
    result = runner.invoke(app, ["research", "train", "--spec", str(spec)])
    assert result.exit_code == 1 and "learning_rat" in result.stderr
