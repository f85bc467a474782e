"""The repository's shape: `mlflow/` must never shadow the installed mlflow package."""

from __future__ import annotations

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
