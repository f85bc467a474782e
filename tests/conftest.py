"""Project-wide test fixtures and the CI rule that no test may be skipped.

With TRADEPIPE_STRICT_TESTS=1 (set by .ci/run) a skipped test fails instead: the tests that
need PostgreSQL or the shared exchange data skip on a developer machine without them, but
in CI their absence is an error, never a silent gap.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
STRICT = os.environ.get("TRADEPIPE_STRICT_TESTS") == "1"
# The database backends (SQLite and one PostgreSQL database per session) of every folder.
pytest_plugins = ("tests.db_backends",)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real exchange files of ../shared/data (see its README)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real exchange data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test's state out of the developer's var/ and free of their config file:
    each test runs in its own empty working directory with TRADEPIPE_* cleared."""
    for name in list(os.environ):
        if name.startswith("TRADEPIPE_") and name not in {
            "TRADEPIPE_TEST_PG_URL",
            "TRADEPIPE_STRICT_TESTS",
        }:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in strict mode (TRADEPIPE_STRICT_TESTS=1): {reason}"
