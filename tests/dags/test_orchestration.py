"""The task bodies' own rules, without Airflow: data intervals, the orchestration config,
and the engine notification against a real local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from research.orchestration.common import DataInterval, OrchestrationError, json_safe
from research.orchestration.config import (
    OrchestrationConfig,
    engine_api_url,
    load_orchestration_config,
)
from research.orchestration.engine_notify import notify_engine
from tests.dags.conftest import REPO_ROOT, closed_port
from tradepipe.config import load_settings

HOUR = timedelta(hours=1)


def test_the_data_interval_comes_from_the_context() -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    interval = DataInterval.from_context(
        {"data_interval_start": start, "data_interval_end": start + HOUR}, HOUR
    )
    assert (interval.start, interval.end) == (start, start + HOUR)
    assert interval.end_ms - interval.start_ms == 3_600_000


def test_a_run_without_a_data_interval_takes_the_period_that_ended_before_it_was_due() -> None:
    run_after = datetime(2024, 3, 1, 5, 30, tzinfo=UTC)
    context: dict[str, Any] = {"data_interval_start": None, "data_interval_end": None}
    context["dag_run"] = SimpleNamespace(run_after=run_after)
    interval = DataInterval.from_context(context, timedelta(days=1))
    assert interval.start == datetime(2024, 2, 29, tzinfo=UTC)
    assert interval.end == datetime(2024, 3, 1, tzinfo=UTC)
    with pytest.raises(OrchestrationError, match="logical date"):
        DataInterval.from_context({}, HOUR)


def test_a_run_an_asset_triggered_ends_at_the_producer_s_period_before_it_was_due() -> None:
    # run_type as Airflow's DagRunType values: Airflow is not imported in this process (its
    # logging setup would take over the loggers of every test after this one)

    run_after = datetime(2024, 3, 1, 5, 0, 7, tzinfo=UTC)
    context: dict[str, Any] = {
        # what Airflow derived from the events' times: on no grid
        "data_interval_start": datetime(2024, 3, 1, 4, 0, 3, tzinfo=UTC),
        "data_interval_end": run_after,
        "dag_run": SimpleNamespace(run_after=run_after, run_type="asset_triggered"),
    }
    interval = DataInterval.from_context(context, timedelta(days=1), asset_period=HOUR)
    assert (interval.start, interval.end) == (
        run_after.replace(hour=4, second=0),
        run_after.replace(second=0),
    )
    # a scheduled run keeps its own interval
    context["dag_run"] = SimpleNamespace(run_after=run_after, run_type="scheduled")
    interval = DataInterval.from_context(context, timedelta(days=1), asset_period=HOUR)
    assert interval.start == datetime(2024, 3, 1, 4, 0, 3, tzinfo=UTC)


def test_json_safe_turns_non_finite_figures_into_json() -> None:
    assert json_safe({"a": float("nan"), "b": [float("inf"), 1.5]}) == {
        "a": None,
        "b": ["inf", 1.5],
    }


def test_the_example_config_is_the_embedded_default() -> None:
    example = REPO_ROOT / "research" / "orchestration" / "orchestration.example.toml"
    assert load_orchestration_config(example) == OrchestrationConfig()


def test_a_config_with_a_misspelt_key_or_a_bad_timeframe_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "orchestration.toml"
    path.write_text('[[market_data.series]]\nsymbol = "ETHUSDT"\ntimeframe = ["1m"]\n')
    with pytest.raises(OrchestrationError, match=r"market_data\.series\.0\.timeframe"):
        load_orchestration_config(path)
    path.write_text('[[market_data.series]]\ntimeframes = ["7x"]\n')
    with pytest.raises(OrchestrationError, match=r"orchestration\.toml: market_data"):
        load_orchestration_config(path)


def test_the_engine_url_comes_from_settings_unless_configured() -> None:
    settings = load_settings(host="0.0.0.0", engine_api_port=8123)
    assert engine_api_url(OrchestrationConfig(), settings) == "http://127.0.0.1:8123"
    configured = OrchestrationConfig(engine_api_url="http://engine:8700/")
    assert engine_api_url(configured, settings) == "http://engine:8700"


class _Engine(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    status: ClassVar[int] = 200
    token: ClassVar[str | None] = None  # when set, the live API's rule: bearer token or 401

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        wanted = type(self).token
        authorized = wanted is None or self.headers.get("Authorization") == f"Bearer {wanted}"
        self.send_response(type(self).status if authorized else 401)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def engine() -> Iterator[tuple[str, type[_Engine]]]:
    handler = type("Engine", (_Engine,), {"received": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler
    finally:
        server.shutdown()
        server.server_close()


PROMOTED = {"model_name": "m", "version": "3", "promoted": True}
REFUSED = {"model_name": "n", "version": "1", "promoted": False}


def test_the_engine_is_told_about_every_promoted_model(
    engine: tuple[str, type[_Engine]],
) -> None:
    url, handler = engine
    result = notify_engine([PROMOTED, REFUSED, None], url)
    assert result["status"] == "ok"
    assert result["notified"] == [{"model_name": "m", "version": "3"}]
    assert handler.received == [
        ("/api/models/refresh", {"model_name": "m", "version": "3", "alias": "champion"})
    ]
    # Airflow hands over a lone result as itself, not as a list (apache/airflow#69036).
    assert notify_engine(PROMOTED, url)["notified"] == [{"model_name": "m", "version": "3"}]
    assert notify_engine(None, url)["status"] == "nothing promoted"


def test_an_engine_error_or_no_engine_is_reported_not_raised(
    engine: tuple[str, type[_Engine]],
) -> None:
    url, handler = engine
    handler.status = 404
    answered = notify_engine([PROMOTED], url)
    assert answered["status"] == "engine answered with errors"
    assert answered["errors"][0]["error"].startswith("HTTP 404")
    down = notify_engine([PROMOTED], f"http://127.0.0.1:{closed_port()}", timeout_seconds=2)
    assert down["status"] == "engine not running" and down["notified"] == []


def test_the_engine_token_goes_with_the_refresh_and_a_missing_one_is_named(
    engine: tuple[str, type[_Engine]],
) -> None:
    url, handler = engine
    handler.token = "s3cret"
    refused = notify_engine([PROMOTED], url)
    assert refused["status"] == "engine answered with errors"
    assert "TRADEPIPE_ENGINE_API_TOKEN" in refused["errors"][0]["error"]
    accepted = notify_engine([PROMOTED], url, token="s3cret")
    assert accepted["status"] == "ok"
    assert accepted["notified"] == [{"model_name": "m", "version": "3"}]
    assert "s3cret" not in json.dumps(accepted)
