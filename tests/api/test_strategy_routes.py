"""The strategy routes over a real engine (its strategy catalogue, real files) and a real
uvicorn on loopback: list, show, unknown names, and assigning a strategy to a bot."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.api.harness import engine_api
from tests.engine.helpers import Aio, add_bots, query

WINDOWED = """
from tradepipe.strategy import Strategy, StrategyParameters


class WindowedParameters(StrategyParameters):
    window: int = 10


class Windowed(Strategy[WindowedParameters]):
    Parameters = WindowedParameters

    def on_candle(self, context):
        return None
"""

BROKEN = "from tradepipe.strategy import Strategy\n\nclass Broken(Strategy:\n    pass\n"


def test_list_and_show_strategies_with_their_bots_hashes_and_errors(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    (strategies_dir / "broken.py").write_text(BROKEN)

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            listed = (await api.client.get("/api/strategies")).json()["strategies"]
            by_name = {strategy["name"]: strategy for strategy in listed}
            assert [s["name"] for s in listed] == sorted(by_name)
            assert {"always", "always_limit", "ema_rsi", "broken"} <= set(by_name)

            always = (await api.client.get("/api/strategies/always")).json()
            assert always == by_name["always"]
            source = (strategies_dir / "always.py").read_bytes()
            assert always["content_hash"] == hashlib.sha256(source).hexdigest()
            assert always["status"] == "valid" and always["version_count"] == 1
            assert always["class_name"] == "Always" and always["bots"] == ["alpha"]
            assert Path(always["file_path"]).resolve() == (strategies_dir / "always.py").resolve()
            assert always["error"] is None and always["error_line"] is None
            assert by_name["ema_rsi"]["bots"] == []

            broken = (await api.client.get("/api/strategies/broken")).json()
            assert broken["status"] == "invalid" and broken["error_line"] == 3
            assert "broken.py:3:" in broken["error"] and "syntax error" in broken["error"]

            missing = await api.client.get("/api/strategies/nope")
            assert missing.status_code == 404 and "nope" in missing.json()["error"]

    aio.run(scenario())


def test_assign_a_strategy_to_a_bot(aio: Aio, database_url: str, strategies_dir: Path) -> None:
    (strategies_dir / "windowed.py").write_text(WINDOWED)
    (strategies_dir / "broken.py").write_text(BROKEN)
    add_bots(
        database_url, strategies_dir, [("delta", "windowed")], strategy_parameters={"window": 5}
    )

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            assigned = await api.client.post(
                "/api/bots/alpha/strategy", json={"strategy": "counting"}, headers=api.auth()
            )
            assert assigned.status_code == 200, assigned.text
            body = assigned.json()
            assert body["name"] == "alpha" and body["strategy"] == "counting"
            assert body["status"]["strategy"] == "counting"
            counting = (strategies_dir / "counting.py").read_bytes()
            assert body["status"]["strategy_hash"] == hashlib.sha256(counting).hexdigest()
            [row] = query(database_url, "SELECT strategy_name FROM bots WHERE name = 'alpha'")
            assert row.strategy_name == "counting"
            shown = (await api.client.get("/api/strategies/counting")).json()
            assert shown["bots"] == ["alpha"]
            assert (await api.client.get("/api/strategies/always")).json()["bots"] == []

            async def refused(bot: str, strategy: str) -> tuple[int, str]:
                response = await api.client.post(
                    f"/api/bots/{bot}/strategy", json={"strategy": strategy}, headers=api.auth()
                )
                return response.status_code, response.json()["error"]

            status, error = await refused("nope", "always")
            assert status == 404 and "nope" in error
            status, error = await refused("alpha", "missing")
            assert status == 409 and "missing" in error
            status, error = await refused("alpha", "broken")
            assert status == 409 and "broken.py:3" in error
            # delta's parameters are windowed's: `always` accepts none
            status, error = await refused("delta", "always")
            assert status == 409 and "window" in error
            assert api.running.engine.bot_status("delta").strategy == "windowed"  # type: ignore[union-attr]
            assert api.running.engine.bot_status("alpha").strategy == "counting"  # type: ignore[union-attr]

            malformed = await api.client.post(
                "/api/bots/alpha/strategy", json={}, headers=api.auth()
            )
            assert malformed.status_code == 422
            unauthorised = await api.client.post(
                "/api/bots/alpha/strategy", json={"strategy": "always"}
            )
            assert unauthorised.status_code == 401

    aio.run(scenario())
