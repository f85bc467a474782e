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
    offenders = sorted(house_offenders(REPO_ROOT))
    assert offenders == [], (
        f"split these (house rule: modules <= 500 lines, functions <= 80): {offenders}"
    )


def test_the_house_check_finds_a_long_module_and_a_long_function(tmp_path: Path) -> None:
    (tmp_path / "long_module.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    body = "".join("    x = 1\n" for _ in range(MAX_FUNCTION_LINES))
    (tmp_path / "functions.py").write_text(f"def long():\n{body}\n\ndef short():\n    pass\n")
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "versions.py").write_text(f"def upgrade():\n{body}")
    assert house_offenders(tmp_path) == {"long_module.py", "functions.py:long"}
