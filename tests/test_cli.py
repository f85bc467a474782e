"""The `tradepipe` command end to end: real files, real database, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(args: tuple[str, ...], *fragments: str) -> None:
    code, _, stderr = invoke(*args)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 1, stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_help_lists_the_command_groups() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "app", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("db", "data", "up", "config"):
        assert command in completed.stdout


def test_the_kernel_package_is_not_the_command_line() -> None:
    # The kernel imports nothing above it, so `python -m tradepipe` says where the command is.
    completed = subprocess.run(
        [sys.executable, "-m", "tradepipe", "--help"], capture_output=True, text=True
    )
    assert completed.returncode == 1 and completed.stdout == ""
    assert completed.stderr.startswith("error:") and "python -m app" in completed.stderr


def test_db_upgrade_creates_and_is_idempotent(tmp_path: Path) -> None:
    first = invoke("db", "upgrade")
    second = invoke("db", "upgrade")
    assert first[0] == second[0] == 0
    assert (tmp_path / "var" / "tradepipe.db").is_file()
    assert first[1].split(":")[0] == second[1].split(":")[0]  # same revision


def test_bad_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_ENGINE_API_PORT", "eighty")
    assert_one_line_error(("db", "upgrade"), "engine_api_port", "TRADEPIPE_ENGINE_API_PORT")


def test_unreachable_database_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:9/x")
    code, _, stderr = invoke("db", "upgrade")
    assert code == 1 and stderr.startswith("error:")
    assert "secret" not in stderr  # the password is masked


@pytest.mark.shared_data
def test_candles_command_reproduces_binance_minutes(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "xrpeth_1m.csv"
    code, stdout, stderr = invoke(
        "data", "candles", "--trades", str(shared_data / "binance_xrpeth_trades_2019-10-11.csv.gz"),
        "--timeframe", "1m", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    ours = pd.read_csv(out)
    assert list(ours.columns) == [
        "timestamp", "open", "high", "low", "close", "volume", "taker_buy_volume", "trades",
    ]  # fmt: skip
    exchange = pd.read_csv(shared_data / "binance_xrpeth_1m_2019-10-11.csv.gz")
    assert ours[list(exchange.columns)].equals(exchange)
    assert "2469" in stdout


@pytest.mark.shared_data
def test_candles_command_reads_a_capture(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "btc_1s.csv"
    capture = shared_data / "binance_spot_btcusdt_ws_2024-08-08.txt.gz"
    code, _, stderr = invoke(
        "data", "candles", "--trades", str(capture), "--timeframe", "1s", "--out", str(out)
    )
    assert code == 0, stderr
    candles = pd.read_csv(out)
    assert candles["trades"].sum() == 9757 and len(candles) == 345


def test_synthetic_ingest_then_list_then_no_op() -> None:
    args = ("data", "ingest", "--source", "synthetic", "--symbol", "BTCUSDT", "--timeframe", "1m",
            "--start", "2024-01-01", "--end", "2024-01-03")  # fmt: skip
    code, first, stderr = invoke(*args)
    assert code == 0, stderr
    assert first.startswith("stored:")
    code, listing, _ = invoke("data", "list")
    assert code == 0
    assert (
        "BTCUSDT" in listing and "2024-01-01 00:00:00" in listing and "2024-01-02 23:59" in listing
    )
    code, again, _ = invoke(*args)
    assert code == 0 and again.startswith("no change:"), again


def test_list_on_an_empty_store_says_how_to_start() -> None:
    code, out, _ = invoke("data", "list")
    assert code == 0 and "no market data yet" in out


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("data", "ingest", "--source", "csv", "--symbol", "X", "--timeframe", "1m",
          "--path", "missing.csv"), ("missing.csv",)),
        (("data", "ingest", "--source", "synthetic", "--symbol", "X", "--timeframe", "7x",
          "--start", "2024-01-01", "--end", "2024-01-02"), ("timeframe", "7x")),
        (("data", "ingest", "--source", "synthetic", "--symbol", "X", "--timeframe", "1m",
          "--start", "2024-01-02", "--end", "2024-01-01"), ("range",)),
        (("data", "ingest", "--source", "parquet", "--symbol", "X", "--timeframe", "1m"),
         ("unknown source", "parquet")),
        (("data", "ingest", "--source", "synthetic", "--symbol", "X", "--timeframe", "1m",
          "--start", "yesterday", "--end", "2024-01-01"), ("--start", "yesterday")),
        (("data", "candles", "--trades", "nope.csv", "--timeframe", "1m", "--out", "o.csv"),
         ("nope.csv",)),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line(args: tuple[str, ...], fragments: tuple[str, ...]) -> None:
    assert_one_line_error(args, *fragments)


def test_wrong_columns_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("when,what\n1,2\n")
    assert_one_line_error(
        ("data", "ingest", "--source", "csv", "--symbol", "X", "--timeframe", "1m",
         "--path", str(bad)),
        "bad.csv",
    )  # fmt: skip
    assert_one_line_error(
        ("data", "candles", "--trades", str(bad), "--timeframe", "1m", "--out", "o.csv"), "bad.csv"
    )


def test_offline_ccxt_fails_fast_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine has no route to the exchange; a short timeout bounds the wait.
    monkeypatch.setenv("TRADEPIPE_CCXT_TIMEOUT_SECONDS", "2")
    assert_one_line_error(
        ("data", "ingest", "--source", "ccxt", "--symbol", "BTC/USDT", "--timeframe", "1h",
         "--start", "2024-01-01", "--end", "2024-01-02"),
        "binance",
    )  # fmt: skip


def test_dashboard_refuses_a_public_address_without_a_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEPIPE_HOST", "0.0.0.0")
    code, _, stderr = invoke("dashboard")
    assert code == 1 and stderr.startswith("error:") and "password" in stderr
