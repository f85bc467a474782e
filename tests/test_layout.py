"""The repository's shape: `mlflow/` must never shadow the installed mlflow package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_mlflow_folder_holds_no_python() -> None:
    assert (REPO_ROOT / "mlflow").is_dir()
    assert list((REPO_ROOT / "mlflow").rglob("*.py")) == []


def test_import_mlflow_from_the_repository_root_gets_the_installed_package() -> None:
    # `python -c` puts the working directory first on sys.path: the worst case for shadowing.
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mlflow, sys; print(mlflow.__file__); print(mlflow.__version__)",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    module_file = Path(found[0]).resolve()
    assert "site-packages" in module_file.parts
    assert not module_file.is_relative_to(REPO_ROOT / "mlflow")
    assert found[1].startswith("3.")


def test_top_level_folders_exist() -> None:
    for folder in (
        "app",
        "tradepipe",
        "research",
        "live",
        "streamlit_app",
        "dags",
        "strategies",
        "mlflow",
        "benchmarks",
        "tests",
    ):
        assert (REPO_ROOT / folder).is_dir(), folder


# The house check (issue 17): no module over 500 lines, no function over 80, migrations aside.
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
# Offenders that other parts of the renovation are splitting at this moment (the engine core,
# the features, the composition root's move to app/, the merged seed data, the long tests);
# known here so the check holds now and fails on any new one. Empty at the merge.
KNOWN_OFFENDERS = {
    "tradepipe/features/batch.py:compute_features",
    "tradepipe/features/incremental.py:update",
    "research/review/replay.py:_positions",
    "research/review/positions.py:compare_pair",
    "research/review/run.py:review_bot",
    "research/training/train.py:train_step",
    "tests/db/conftest.py:seeded",
    "tests/dashboard/seed.py:seed",
    "tests/api/test_history_routes.py:"
    "test_orders_positions_fills_pnl_and_events_with_filters_and_pages",
    "tests/api/test_model_routes.py:test_rollback_pin_and_unpin_through_the_api",
    "tests/brokers/test_engine_testnet.py:scenario",
    "tests/brokers/test_engine_testnet.py:"
    "test_a_testnet_bot_trades_survives_a_lost_answer_and_reconciles_after_restart",
    "tests/brokers/test_testnet_crash.py:"
    "test_sigkill_of_a_testnet_engine_then_restart_finds_every_order",
    "tests/dags/test_daily_report_dag.py:_seed",
    "tests/db/test_db_models.py:_one_of_each",
    "tests/engine/test_corrupt_models.py:"
    "test_tradepipe_live_run_does_not_abort_on_a_truncated_champion",
    "tests/engine/test_crash.py:test_sigkill_with_open_positions_then_restart_resumes_everything",
    "tests/engine/test_end_to_end.py:"
    "test_both_shipped_strategies_trade_and_every_order_is_traceable",
    "tests/engine/test_evidence.py:test_recorded_candles_and_decisions_are_what_the_engine_saw",
    "tests/engine/test_guard_rollback.py:test_a_decaying_champion_is_rolled_back",
    "tests/engine/test_lease_cluster.py:"
    "test_three_engines_share_30_bots_a_sigkilled_one_s_bots_move_and_none_runs_twice",
    "tests/engine/test_leases.py:"
    "test_sigkilled_engine_s_bots_trade_again_on_the_other_within_ttl_and_recovery",
    "tests/engine/test_models.py:test_wait_load_swap_and_refuse",
    "tests/engine/test_quality.py:test_live_quality_of_the_recorded_evidence",
    "tests/engine/test_strategy_files.py:steps",
    "tests/notify/test_engine_notifications.py:test_each_bot_hears_what_it_chose_and_nothing_else",
    "tests/secrets/test_secrets_scan.py:"
    "test_no_secret_value_reaches_anything_the_platform_keeps_or_shows",
}


def house_offenders(root: Path) -> set[str]:
    """`path` for a module over MAX_MODULE_LINES, `path:function` for a function over
    MAX_FUNCTION_LINES (decorators aside), in every Python file outside migrations."""
    offenders: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if {".venv", "var", "migrations"} & set(relative.parts):
            continue
        source = path.read_text(encoding="utf-8")
        if len(source.splitlines()) > MAX_MODULE_LINES:
            offenders.add(relative.as_posix())
        for node in ast.walk(ast.parse(source, filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                    offenders.add(f"{relative.as_posix()}:{node.name}")
    return offenders


def test_no_module_over_500_lines_and_no_function_over_80_outside_migrations() -> None:
    new = sorted(house_offenders(REPO_ROOT) - KNOWN_OFFENDERS)
    assert new == [], f"split these (house rule: modules <= 500 lines, functions <= 80): {new}"


def test_the_house_check_finds_a_long_module_and_a_long_function(tmp_path: Path) -> None:
    (tmp_path / "long_module.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    body = "".join("    x = 1\n" for _ in range(MAX_FUNCTION_LINES))
    (tmp_path / "functions.py").write_text(f"def long():\n{body}\n\ndef short():\n    pass\n")
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "versions.py").write_text(f"def upgrade():\n{body}")
    assert house_offenders(tmp_path) == {"long_module.py", "functions.py:long"}
