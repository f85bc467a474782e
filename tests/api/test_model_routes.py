"""The model routes over a real engine, a real MLflow store and a real uvicorn on loopback:
list and show, roll back (the bots swap at once, not at the next registry poll), pin (a
promotion is then refused), unpin, and the errors: no token, unknown model, no reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from live.engine import Engine
from tests.api.harness import Api, engine_api
from tests.engine.helpers import START_MS, Aio, add_bots, push, query, walk
from tests.engine.model_store import ModelStore

MODEL = "api_routes_model"


@pytest.fixture(scope="module")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    return ModelStore.under(tmp_path_factory.mktemp("mlflow_store"))


def test_rollback_pin_and_unpin_through_the_api(
    aio: Aio, database_url: str, strategies_dir: Path, model_store: ModelStore
) -> None:
    first = model_store.register(MODEL)
    second = model_store.register(MODEL, seed=2)
    add_bots(
        database_url,
        strategies_dir,
        [("m1", "lgbm_threshold")],
        model_name=MODEL,
        confidence_threshold=0.01,
    )

    async def scenario() -> None:
        async with engine_api(
            database_url,
            strategies_dir,
            mlflow_tracking_uri=model_store.tracking_uri,
            model_poll_seconds=3600.0,  # only the routes can make it look again
        ) as api:
            engine = api.running.engine
            await push(api.running, walk(30, start_ms=START_MS))
            # the first load waits for the model check process to start (seconds)
            await aio.eventually(lambda: _version_in_use(engine) == second, "the champion", 40)
            await _list_then_roll_back(api, first, second)
            await _pin_refuse_a_promotion_and_unpin(api, first, second)
            await _refuse_an_unknown_model_and_a_blank_reason(api)

    aio.run(scenario())
    kinds = [
        row.kind
        for row in query(
            database_url, "SELECT kind FROM events WHERE kind LIKE 'model_%' ORDER BY id"
        )
    ]
    assert {"model_rolled_back", "model_pinned", "model_unpinned"} <= set(kinds)


def _version_in_use(engine: Engine) -> str | None:
    status = engine.bot_status("m1")
    return None if status is None else status.model_version


async def _list_then_roll_back(api: Api, first: str, second: str) -> None:
    """The list shows both champions; a rollback without a token is refused, with one the
    bot swaps back to `first` before the answer."""
    listed = (await api.client.get("/api/models")).json()["models"]
    [mine] = [model for model in listed if model["name"] == MODEL]
    assert mine["champion"] == second and mine["previous_champion"] == first

    refused = await api.client.post(
        f"/api/models/{MODEL}/rollback", json={"reason": "live hit rate fell"}
    )
    assert refused.status_code == 401, refused.text
    answer = await api.client.post(
        f"/api/models/{MODEL}/rollback",
        json={"reason": "live hit rate fell"},
        headers=api.auth(),
    )
    assert answer.status_code == 200, answer.text
    action = answer.json()["action"]
    assert (action["champion_before"], action["champion_after"]) == (second, first)
    assert action["by"] == "api:127.0.0.1" and action["reason"] == "live hit rate fell"
    assert _version_in_use(api.running.engine) == first  # swapped before the answer


async def _pin_refuse_a_promotion_and_unpin(api: Api, first: str, second: str) -> None:
    pinned = await api.client.post(
        f"/api/models/{MODEL}/pin", json={"reason": "audit"}, headers=api.auth()
    )
    assert pinned.status_code == 200, pinned.text
    blocked = await api.client.post(
        f"/api/models/{MODEL}/promote",
        json={"version": second, "reason": "try"},
        headers=api.auth(),
    )
    assert blocked.status_code == 409 and "pinned" in blocked.json()["error"]
    shown = (await api.client.get(f"/api/models/{MODEL}")).json()
    assert shown["summary"]["pin"]["reason"] == "audit"
    assert shown["summary"]["champion"] == first
    unpinned = await api.client.post(
        f"/api/models/{MODEL}/unpin", json={"reason": "audit done"}, headers=api.auth()
    )
    assert unpinned.status_code == 200, unpinned.text


async def _refuse_an_unknown_model_and_a_blank_reason(api: Api) -> None:
    unknown = await api.client.post(
        "/api/models/no_such_model/pin", json={"reason": "x"}, headers=api.auth()
    )
    assert unknown.status_code == 404, unknown.text
    blank = await api.client.post(
        f"/api/models/{MODEL}/pin", json={"reason": ""}, headers=api.auth()
    )
    assert blank.status_code == 422, blank.text
