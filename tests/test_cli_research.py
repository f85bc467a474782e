"""Research commands of the CLI on real data: features batch and incremental agree."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tradepipe.cli import app
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
