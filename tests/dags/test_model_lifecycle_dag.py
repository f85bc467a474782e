"""model_lifecycle on a real MLflow store and trading database: a small spec is trained,
validated and promoted to champion; a spec without data fails alone; re-running the interval
registers nothing new."""

from __future__ import annotations

import shutil

import sqlalchemy as sa
from mlflow import MlflowClient

from research.marketdata import IngestRequest, ingest
from tests.dags.conftest import REPO_ROOT, AirflowWorker, Platform
from tests.training.helpers import MODEL, ms, small_spec, to_toml
from tradepipe.db import ModelPromotion, PromotionDecision, create_engine_for, session_scope
from tradepipe.marketdata import MarketDataStore
from tradepipe.registry import ModelRegistry

# The run at 2024-03-06 00:00 has the data interval 2024-03-05: the spec's window
# [03-01, 03-08) is cut at the interval's end, so the run trains on five days.
RUN_AT = "2024-03-06T00:00:00+00:00"
SMALL = {
    "data.start": "2024-03-01",
    "data.end": "2024-03-08",
    "training.num_boost_round": 40,
    "walk_forward.folds": 2,
    # Five days hold few of the synthetic market's flow bursts: a model this small is rarely
    # confident, and at paper costs only its confident calls trade.
    "strategy.bot.confidence_threshold": 0.2,
}


def _write_specs(platform: Platform) -> None:
    specs = platform.root / "specs"
    specs.mkdir()
    (specs / "btcusdt_small.toml").write_text(to_toml(small_spec(**SMALL)))
    # Nothing is ingested for 2023: this spec's chain fails at build_dataset.
    no_data = small_spec(**SMALL | {"data.start": "2023-01-01", "data.end": "2023-01-05"})
    (specs / "no_data.toml").write_text(to_toml(no_data))
    platform.write_config(f'specs_dir = "{specs}"\n\n[strategy_backtest]\ndays = 1\n')


def test_a_spec_is_promoted_a_broken_one_fails_alone_and_a_rerun_adds_no_version(
    airflow: AirflowWorker, platform: Platform
) -> None:
    ingest(
        MarketDataStore(platform.market_data_dir),
        IngestRequest("synthetic", None, "BTCUSDT", "1m", None, ms("2024-03-01"), ms("2024-03-06")),
    )
    _write_specs(platform)

    first = airflow.run("model_lifecycle", RUN_AT, platform)
    assert first.state == "failed"  # flag_failed_specs makes the broken spec visible
    assert first.tasks["spec.promote[0]"] == "success"
    assert first.tasks["spec.build_dataset[1]"] == "failed"
    assert first.tasks["spec.promote[1]"] == "upstream_failed"
    assert first.tasks["notify_engine"] == "success"
    assert first.tasks["flag_failed_specs"] == "failed"

    data_ref = first.xcom["spec.build_dataset[0]"]
    assert data_ref["end_ms"] == ms("2024-03-06") and data_ref["dataset_rows"] > 1000
    promoted = first.xcom["spec.promote[0]"]
    assert promoted["promoted"] is True, promoted["reasons"]
    assert promoted["model_name"] == MODEL
    notified = first.xcom["notify_engine"]
    assert notified["status"] == "engine not running"
    assert notified["url"].endswith("/api/models/refresh")

    champion = ModelRegistry(platform.tracking_uri).champion(MODEL)
    assert champion is not None and champion.version == promoted["version"]
    engine = create_engine_for(platform.database_url)
    with session_scope(engine) as session:
        decisions = session.scalars(sa.select(ModelPromotion)).all()
        assert [(row.model_name, row.version, row.decision) for row in decisions] == [
            (MODEL, promoted["version"], PromotionDecision.PROMOTED)
        ]
    engine.dispose()

    (platform.root / "specs" / "no_data.toml").unlink()
    again = airflow.run("model_lifecycle", RUN_AT, platform)
    assert again.state == "success", again.tasks
    assert again.tasks["flag_failed_specs"] == "skipped"
    assert again.xcom["spec.train[0]"]["train_reused"] is True
    assert again.xcom["spec.validate[0]"]["validation_reused"] is True
    replayed = again.xcom["spec.promote[0]"]
    assert replayed["replayed"] is True and replayed["version"] == promoted["version"]
    client = MlflowClient(tracking_uri=platform.tracking_uri, registry_uri=platform.tracking_uri)
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 1
    engine = create_engine_for(platform.database_url)
    with session_scope(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ModelPromotion)) == 1
    engine.dispose()


def test_the_champion_drives_the_backtest_of_the_strategy_that_consumes_it(
    airflow: AirflowWorker, platform: Platform
) -> None:
    ingest(
        MarketDataStore(platform.market_data_dir),
        IngestRequest("synthetic", None, "BTCUSDT", "1m", None, ms("2024-03-01"), ms("2024-03-06")),
    )
    _write_specs(platform)
    (platform.root / "specs" / "no_data.toml").unlink()
    assert airflow.run("model_lifecycle", RUN_AT, platform).state == "success"
    shutil.copy(REPO_ROOT / "strategies" / "lgbm_threshold.py", platform.strategies_dir)

    synced = airflow.run("strategy_sync", RUN_AT, platform)
    assert synced.state == "success", synced.tasks
    (backtest,) = synced.mapped("backtest_strategy")
    assert backtest["status"] == "ok" and backtest["model"] == f"{MODEL}/1"
    assert backtest["metrics"]["trades"] > 0
    assert (backtest["start_ms"], backtest["end_ms"]) == (ms("2024-03-05"), ms("2024-03-06"))
