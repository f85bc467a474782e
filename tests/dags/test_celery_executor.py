"""model_lifecycle on a real CeleryExecutor: two workers train two specs at the same time.

The cluster of the `celery` compose profile on this machine (tests/dags/celery_cluster.py):
PostgreSQL metadata, Redis broker and result backend, an api-server, a scheduler, a
dag-processor and two `airflow celery worker` processes of concurrency 1. A triggered run
over two small specs must succeed with each spec's chain done by the workers, and the two
chains must have run side by side: a task of one spec and a task of the other running at
the same moment on different workers. Concurrency 1 per worker makes that overlap the proof
that the mapped tasks were spread over the workers, not queued behind one another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis
from mlflow import MlflowClient

from research.marketdata import IngestRequest, ingest
from tests.conftest import STRICT
from tests.dags.celery_cluster import REDIS_URL, CeleryCluster, TaskRun
from tests.dags.conftest import Platform
from tests.support import fresh_pg_database
from tests.training.helpers import MODEL, STRATEGY, ms, small_spec, to_toml
from tradepipe.db import upgrade_database
from tradepipe.marketdata import MarketDataStore

RUN_AT = "2024-03-06T00:00:00+00:00"
RUN_ID = "celery_two_specs"
WORKERS = ["worker_a", "worker_b"]
SPECS = ("btcusdt_a", "btcusdt_b")
SMALL = {
    "data.start": "2024-03-01",
    "data.end": "2024-03-08",
    "training.num_boost_round": 20,
    "walk_forward.folds": 2,
    "strategy.bot.confidence_threshold": 0.2,
}


@pytest.fixture
def redis_broker() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.exceptions.ConnectionError as error:
        message = f"Redis not reachable at {REDIS_URL} ({error}): start redis-server"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_URL


def _write_specs(platform: Platform) -> None:
    specs = platform.root / "specs"
    specs.mkdir()
    for name in SPECS:
        # Each spec registers a model of its own, consumed by a copy of the demo strategy.
        strategy = platform.strategies_dir / f"{name}.py"
        strategy.write_text(STRATEGY.read_text().replace(MODEL, f"{name}_model"))
        changes = {
            "name": name,
            "registered_model": f"{name}_model",
            "strategy.file": str(strategy),
        }
        (specs / f"{name}.toml").write_text(to_toml(small_spec(**SMALL | changes)))
    platform.write_config(f'specs_dir = "{specs}"\n\n[strategy_backtest]\ndays = 1\n')


def _shared_stores(stack: ExitStack, platform: Platform) -> Callable[[], None]:
    """The trading database and the MLflow store on PostgreSQL, and the function that
    creates their schemas, to be done before the run: two tasks that each found an empty
    SQLite store would both migrate it at once (the first try failed so: "duplicate column
    name: step"), and production's workers share one server's stores too."""
    trading = stack.enter_context(fresh_pg_database("tradepipe_celery_trading"))
    tracking = stack.enter_context(fresh_pg_database("tradepipe_celery_mlflow"))
    trading_url = trading.render_as_string(hide_password=False)
    tracking_uri = tracking.render_as_string(hide_password=False)
    platform.env.update(
        TRADEPIPE_DATABASE_URL=trading_url, TRADEPIPE_MLFLOW_TRACKING_URI=tracking_uri
    )

    def create_schemas() -> None:
        upgrade_database(trading_url)
        MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).search_experiments()

    return create_schemas


@pytest.fixture
def cluster(tmp_path: Path, redis_broker: str) -> Iterator[tuple[CeleryCluster, Platform]]:
    platform = Platform(tmp_path / "platform")
    ingest(
        MarketDataStore(platform.market_data_dir),
        IngestRequest("synthetic", None, "BTCUSDT", "1m", None, ms("2024-03-01"), ms("2024-03-06")),
    )
    _write_specs(platform)
    with ExitStack() as stack:
        database = stack.enter_context(fresh_pg_database("airflow_celery_test"))
        create_schemas = _shared_stores(stack, platform)
        built = CeleryCluster(tmp_path, database, platform.env, redis_broker)
        stack.callback(built.stop)
        # The stores' schemas are made while Airflow migrates and starts (a minute of waiting).
        with ThreadPoolExecutor(max_workers=1) as pool:
            schemas = pool.submit(create_schemas)
            built.migrate()
            built.start(WORKERS)
            schemas.result()
        yield built, platform


def _overlapping_pairs(first: list[TaskRun], second: list[TaskRun]) -> list[tuple[str, str]]:
    pairs = []
    for one in first:
        for other in second:
            assert one.start and one.end and other.start and other.end
            if one.start < other.end and other.start < one.end and one.hostname != other.hostname:
                pairs.append((one.key, other.key))
    return pairs


@pytest.mark.celery_cluster
def test_two_workers_train_two_specs_side_by_side(
    cluster: tuple[CeleryCluster, Platform],
) -> None:
    airflow, _ = cluster
    airflow.wait_for_dag("model_lifecycle")
    airflow.trigger("model_lifecycle", RUN_AT, RUN_ID)

    state = airflow.wait_for_run("model_lifecycle", RUN_ID, timeout_seconds=600)

    tasks = airflow.task_runs("model_lifecycle", RUN_ID)
    states = {task.key: task.state for task in tasks}
    assert state == "success", states
    chains = {
        index: [t for t in tasks if t.task_id.startswith("spec.") and t.map_index == index]
        for index in (0, 1)
    }
    for index, chain in chains.items():
        assert [t.state for t in chain] == ["success"] * 4, (index, states)
    print("\n".join(map(str, tasks)))  # the timeline, shown with -s
    hosts = {task.key: task.hostname for task in tasks if task.state == "success"}
    assert set(hosts.values()) <= set(WORKERS), f"task hosts not the test's workers: {hosts}"
    assert {t.hostname for chain in chains.values() for t in chain} == set(WORKERS), hosts
    overlaps = _overlapping_pairs(chains[0], chains[1])
    assert overlaps, (
        "no task of one spec ran while a task of the other ran on the other worker: "
        + "; ".join(map(str, tasks))
    )
