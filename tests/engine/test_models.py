"""Models behind an alias in a real MLflow store: a bot waits (not crashes) while there is
none, loads the champion when it appears, swaps to a new champion (even one trained on
another feature spec), and refuses a broken one, which is an event while the old version
keeps trading."""

from __future__ import annotations

from pathlib import Path

from live.engine import BotRunState, Engine, EngineEvent
from tests.engine.helpers import (
    START_MS,
    Aio,
    add_bots,
    config_for,
    push,
    query,
    start_engine,
    walk,
)
from tests.engine.model_store import ModelStore
from tests.engine.test_model_check import SMALL

# A feature spec other than the default one: the second champion is trained on it.
SMALL_SPEC = SMALL.model_copy(update={"name": "small"})


def version_of(engine: Engine, bot: str = "m1") -> str | None:
    status = engine.bot_status(bot)
    return status.model_version if status is not None else None


def state_of(engine: Engine, bot: str) -> BotRunState | None:
    status = engine.bot_status(bot)
    return status.state if status is not None else None


def waiting_reason(engine: Engine) -> str:
    return str(getattr(engine.bot_status("m1"), "last_error", ""))


def test_wait_load_swap_and_refuse(
    aio: Aio, database_url: str, strategies_dir: Path, model_store: ModelStore
) -> None:
    name = "swap_test_model"
    add_bots(
        database_url,
        strategies_dir,
        [("m1", "lgbm_threshold")],
        model_name=name,
        confidence_threshold=0.01,
    )
    add_bots(database_url, strategies_dir, [("plain", "always")])
    events: list[EngineEvent] = []

    async def scenario() -> tuple[str, str, str]:
        config = config_for(
            database_url, strategies_dir, mlflow_tracking_uri=model_store.tracking_uri
        )
        running = await start_engine(config)
        engine = running.engine
        engine.bus.subscribe(events.append)
        seen = 0

        async def trade(count: int) -> None:
            nonlocal seen
            trades = walk(count, start_ms=START_MS + seen * 1_000, first_id=seen + 1)
            await push(running, trades)
            seen += count

        try:
            await trade(40)
            assert state_of(engine, "m1") is BotRunState.WAITING_FOR_MODEL

            await aio.eventually(
                lambda: "no version with alias 'champion'" in waiting_reason(engine), "the reason"
            )
            assert state_of(engine, "plain") is BotRunState.RUNNING

            first = model_store.register(name)
            # the first check may wait for the model check process to start (it imports
            # mlflow: seconds on a loaded machine)
            await aio.eventually(lambda: version_of(engine) == first, "the first champion", 30)
            await trade(10)
            assert state_of(engine, "m1") is BotRunState.RUNNING
            assert engine.core.bots["m1"].entries > 0

            second = model_store.register(name, spec=SMALL_SPEC, seed=2)
            await aio.eventually(lambda: version_of(engine) == second, "the swap")
            # trained on another spec: its features were warmed up from the kept candles
            features = engine.core.bots["m1"].features
            assert features is not None and features.spec == SMALL_SPEC and features.ready
            entries = engine.core.bots["m1"].entries
            await trade(20)
            assert engine.core.bots["m1"].entries > entries

            broken = model_store.register(name, corrupt=True)
            await aio.eventually(
                lambda: any(e.kind == "model_refused" for e in events), "the refusal", 15
            )
            assert version_of(engine) == second  # the old version keeps running
            entries = engine.core.bots["m1"].entries
            await trade(20)
            assert engine.core.bots["m1"].entries > entries
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
            return first, second, broken
        finally:
            await engine.stop()

    first, second, broken = aio.run(scenario(), timeout=90)
    assert_the_orders_and_events_name_each_version(database_url, events, first, second, broken)


def assert_the_orders_and_events_name_each_version(
    database_url: str, events: list[EngineEvent], first: str, second: str, broken: str
) -> None:
    """m1's entries were made by the first and the second champion, never by the broken one;
    one load, one swap and one refusal, each an event."""
    [refused] = [e for e in events if e.kind == "model_refused"]
    assert refused.data["version"] == broken and refused.data["running_version"] == second
    versions = query(
        database_url,
        "SELECT DISTINCT o.model_version FROM orders o JOIN bots b ON b.id = o.bot_id "
        "WHERE b.name = 'm1' AND o.role = 'entry'",
    )
    assert {row.model_version for row in versions} == {first, second}
    kinds = [r.kind for r in query(database_url, "SELECT kind FROM events ORDER BY id")]
    assert kinds.count("model_loaded") == 1 and kinds.count("model_swapped") == 1
    assert kinds.count("model_refused") == 1
