"""`tradepipe demo`: the whole pipeline headless, as a user runs it from the project folder
(the demo spec in research/specs/, the default strategies), with var/ in a temporary folder."""

from __future__ import annotations

import re
from pathlib import Path

from tests.platform.stack import REPO_ROOT, Tradepipe


def test_a_short_demo_promotes_a_model_trades_and_prints_the_summary(tmp_path: Path) -> None:
    tradepipe = Tradepipe.on_free_ports(tmp_path / "var")
    # stores the caller's settings name (production, say): the demo must not write there
    elsewhere = tmp_path / "elsewhere"
    tradepipe.env["TRADEPIPE_DATABASE_URL"] = f"sqlite:///{elsewhere / 'trading.db'}"
    tradepipe.env["TRADEPIPE_MLFLOW_TRACKING_URI"] = f"sqlite:///{elsewhere / 'mlflow.db'}"
    done = tradepipe.run("demo", "--minutes", "0.2", timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    stages = ["setup", "ingest", "model_lifecycle", "bots", "engine", "summary"]
    positions = [out.index(f"demo: {stage}") for stage in stages]
    assert positions == sorted(positions)
    assert "models promoted: btcusdt_1m_triple_barrier v1" in out
    totals = re.search(r"bots: (\d+)\s+orders: (\d+)\s+net PnL: (-?[\d.]+)", out)
    assert totals, out
    assert int(totals.group(1)) == 2
    assert int(totals.group(2)) > 0, out  # as fast as read: days of market in 12 s
    assert "demo_ema_rsi" in out and "demo_lgbm" in out
    assert "errors: 0" in out
    # the demo keeps to its own folder: the state of `tradepipe up` is untouched
    assert sorted(p.name for p in (tmp_path / "var").iterdir()) == ["demo"]
    assert not elsewhere.exists()
    assert (tmp_path / "var" / "demo" / "tradepipe.db").is_file()


def test_a_failing_stage_exits_1_naming_the_stage(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    spec = (REPO_ROOT / "research" / "specs" / "btcusdt_1m.toml").read_text()
    missing = tmp_path / "no_such_candles.csv"
    broken = spec.replace('reference = "synthetic/BTCUSDT/1m"', f'reference = "{missing}"')
    assert broken != spec
    (specs / "broken.toml").write_text(broken)
    config = tmp_path / "orchestration.toml"
    config.write_text(f'specs_dir = "{specs}"\n')
    tradepipe = Tradepipe.on_free_ports(tmp_path / "var")
    tradepipe.env["TRADEPIPE_ORCHESTRATION_CONFIG"] = str(config)
    done = tradepipe.run("demo", "--minutes", "0.1", timeout=900)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: demo stage 'model_lifecycle' failed" in done.stderr
    assert "spec.build_dataset[0]" in done.stderr  # the failed task, named
    assert "demo: engine" not in done.stdout  # nothing after the failed stage ran
