"""model_lifecycle: every day, and whenever market_data stored new candles, train, validate
and gate every model spec; promote or refuse.

Scheduled on the daily data interval or the asset `tradepipe_market_data` (Airflow 3 asset
scheduling). A run the asset triggered has no data interval of its own: it works up to the
hour that ended last before it was due (market_data's period), so re-running it repeats the
same work, and one with no new data for a spec reuses that spec's trained version.

One mapped task group per spec file in the specs folder (research/specs/, or specs_dir of
the orchestration config):

    discover_specs -> spec.build_dataset -> spec.train -> spec.validate -> spec.promote
                                                                  -> notify_engine
                                                                  -> flag_failed_specs

- build_dataset: the spec's candles up to the run's data interval end, checked to make a
  training set; passes on a reference (data key, range, content hash).
- train / validate: research.training's idempotent steps (keyed by spec, candles and
  strategy hashes: re-running an interval registers no new version).
- promote: backtest of candidate and champion with the consuming strategy on the same
  unseen window, the spec's gates, then the `champion` alias moves or the refusal is
  recorded (model_promotions row, version tags).
- notify_engine (runs whatever happened to the specs): POST /api/models/refresh on the
  live engine for each promoted model, with the engine's bearer token
  (TRADEPIPE_ENGINE_API_TOKEN); an engine that is not running is logged, not an
  error. See research/orchestration/engine_notify.py.
- flag_failed_specs: runs only when a spec's chain failed, and fails, so the run shows
  failed even though notify_engine (a leaf that tolerates failed specs) succeeded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    CronDataIntervalTimetable,
    TriggerRule,
    dag,
    get_current_context,
    task,
    task_group,
)

PERIOD = timedelta(days=1)
# market_data's period: where a run triggered by its asset ends its data
ASSET_PERIOD = timedelta(hours=1)


@dag(
    dag_id="model_lifecycle",
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        assets=Asset.ref(name="tradepipe_market_data"),
    ),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        # One retry: training is deterministic, so only a transient failure (a locked
        # database, an unreachable MLflow server) is worth repeating.
        "retries": 1,
        "retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(hours=3),
    },
    tags=["tradepipe", "models"],
    doc_md=__doc__,
)
def model_lifecycle() -> None:
    @task
    def discover_specs() -> list[str]:
        from research.orchestration.config import discover_specs

        return discover_specs()

    @task_group(group_id="spec")
    def per_spec(spec_path: str) -> Any:
        # multiple_outputs=False: a returned dict is one XCom, the reference the next task reads;
        # Airflow would otherwise infer one XCom per key from the dict return annotation.
        @task(multiple_outputs=False, map_index_template="{{ spec_name }}")
        def build_dataset(spec_path: str) -> dict[str, Any]:
            from research.orchestration.common import DataInterval
            from research.orchestration.lifecycle import build_spec_dataset

            context = get_current_context()
            # Read by map_index_template (Airflow's Context TypedDict does not declare such keys).
            context["spec_name"] = spec_path.rsplit("/", 1)[-1].removesuffix(".toml")  # type: ignore[typeddict-unknown-key]
            interval = DataInterval.from_context(context, PERIOD, asset_period=ASSET_PERIOD)
            return build_spec_dataset(spec_path, interval)

        @task(multiple_outputs=False)
        def train(data_ref: dict[str, Any]) -> dict[str, Any]:
            from research.orchestration.lifecycle import train_model

            return train_model(data_ref)

        @task(multiple_outputs=False)
        def validate(trained: dict[str, Any]) -> dict[str, Any]:
            from research.orchestration.lifecycle import validate_model

            return validate_model(trained)

        @task(multiple_outputs=False)
        def promote(validated: dict[str, Any]) -> dict[str, Any]:
            from research.orchestration.lifecycle import promote_model

            return promote_model(validated)

        # A task called here gets the XComArg of the one before; Airflow types the call as the
        # function's own parameters (airflow.sdk.bases.decorator.Task), hence the ignore.
        return promote(validate(train(build_dataset(spec_path))))  # type: ignore[arg-type]

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE)
    def notify_engine(outcomes: Any) -> dict[str, Any]:
        # `outcomes`: the promote results of the specs that got that far; a lone result may
        # arrive unwrapped (apache/airflow#69036), which notify_engine accepts.
        from research.orchestration.config import engine_api_url, load_orchestration_config
        from research.orchestration.engine_notify import notify_engine
        from tradepipe.config import load_settings

        config = load_orchestration_config()
        settings = load_settings()
        token = settings.engine_api_token
        return notify_engine(
            outcomes,
            engine_api_url(config, settings),
            token=None if token is None else token.get_secret_value(),
            timeout_seconds=config.engine_timeout_seconds,
        )

    @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0)
    def flag_failed_specs() -> None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            "the chain of at least one spec failed: see the failed spec.* task instances"
        )

    outcomes = per_spec.expand(spec_path=discover_specs())
    notify_engine(outcomes)
    outcomes >> flag_failed_specs()


model_lifecycle()
