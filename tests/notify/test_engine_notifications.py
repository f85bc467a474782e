"""A real engine (in-memory feed, SQLite, paper broker, a real MLflow store) with Telegram and
webhook notifiers pointed at local servers: each bot's chosen categories arrive (entries,
exits, errors, model swaps, strategy changes), unchosen ones never do, and receivers that
fail or hang delay nothing but their own messages."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.engine.helpers import START_MS, Aio, add_bots, config_for, push, start_engine, walk
from tests.engine.model_store import ModelStore
from tests.notify.harness import TELEGRAM_CHAT, hub_for, servers, set_secrets
from tests.notify.servers import TelegramServer, WebhookServer

MODEL = "notify_swap_model"


def test_each_bot_hears_what_it_chose_and_nothing_else(
    database_url: str,
    strategies_dir: Path,
    model_store: ModelStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_secrets(monkeypatch)
    first = model_store.register(MODEL, seed=1)
    _add_bots_each_choosing_one_category(database_url, strategies_dir)
    telegram, webhook = servers()

    async def scenario() -> str:
        async with telegram, webhook:
            config = config_for(
                database_url, strategies_dir, mlflow_tracking_uri=model_store.tracking_uri
            )
            running = await start_engine(config, notifications=hub_for(telegram, webhook))
            engine = running.engine
            try:
                await Aio.eventually(
                    lambda: getattr(engine.bot_status("mdl"), "model_version", None) == first,
                    "the first model version",
                    40,  # the first check waits for the model check process to start
                )
                await push(running, walk(120))
                second = model_store.register(MODEL, seed=2)  # promoted: a swap
                counting = strategies_dir / "counting.py"
                counting.write_text(counting.read_text() + "\n# edited: reload me\n")
                await push(running, walk(120, start_ms=START_MS + 120_000, first_id=121))

                def arrived() -> bool:
                    tg, hook = telegram.texts(), webhook.categories()
                    return (
                        any(t.startswith("ent: entry") for t in tg)
                        and any(t.startswith("boom: bot error") for t in tg)
                        and any(t.startswith("strat: bot reloaded") for t in tg)
                        and {"entries", "exits", "model_swaps"} <= set(hook)
                    )

                await Aio.eventually(arrived, "every chosen category", 20)
                await asyncio.sleep(0.3)  # anything unchosen would have had time to arrive
            finally:
                await engine.stop()
            return second

    second = Aio.run(scenario(), timeout=90)
    tg = _check_telegram_heard_only_the_chosen(telegram)
    by_category = _check_webhook_heard_only_the_chosen(webhook, second)
    # one copy per event: ent routes entries to both notifiers, each gets each entry once
    tg_entries = [t for t in tg if t.startswith("ent: entry")]
    assert len(tg_entries) == len(by_category["entries"])
    assert len({m["id"] for m in webhook.received}) == len(webhook.received)


def _add_bots_each_choosing_one_category(database_url: str, strategies_dir: Path) -> None:
    """Five bots, each with one category on one or both notifiers, and one with none."""
    add_bots(database_url, strategies_dir, [("ent", "always")], notifiers=["tg", "hook"],
             notify_events=["entries"])  # fmt: skip
    add_bots(database_url, strategies_dir, [("ext", "always")], notifiers=["hook"],
             notify_events=["exits"])  # fmt: skip
    add_bots(database_url, strategies_dir, [("boom", "explode")], notifiers=["tg"],
             notify_events=["errors"])  # fmt: skip
    add_bots(database_url, strategies_dir, [("strat", "counting")], notifiers=["tg"],
             notify_events=["strategy_changes"])  # fmt: skip
    add_bots(database_url, strategies_dir, [("mdl", "lgbm_threshold")], notifiers=["hook"],
             notify_events=["model_swaps"], model_name=MODEL,
             confidence_threshold=0.01)  # fmt: skip
    add_bots(database_url, strategies_dir, [("quiet", "always")])  # no notifiers at all


def _check_telegram_heard_only_the_chosen(telegram: TelegramServer) -> list[str]:
    tg = telegram.texts()
    # Telegram: ent's entries, boom's error, strat's strategy change (the file's edit and the
    # bot's reload); nothing else
    told = (
        "ent: entry",
        "boom: bot error",
        "strategy edited: strategy counting",
        "strat: bot reloaded",
    )
    assert all(t.startswith(told) for t in tg)
    assert {m["chat_id"] for m in telegram.received} == {TELEGRAM_CHAT}
    return tg


def _check_webhook_heard_only_the_chosen(
    webhook: WebhookServer, second: str
) -> dict[str, list[dict[str, Any]]]:
    hook = webhook.received
    by_category = {c: [m for m in hook if m["category"] == c] for c in webhook.categories()}
    assert set(by_category) == {"entries", "exits", "model_swaps"}
    assert {m["bot"] for m in by_category["entries"]} == {"ent"}
    assert {m["bot"] for m in by_category["exits"]} == {"ext"}
    entry = by_category["entries"][0]["data"]
    assert entry["symbol"] == "BTCUSDT" and entry["side"] == "buy" and entry["quantity"] > 0
    exit_ = by_category["exits"][0]["data"]
    assert exit_["exit_reason"] and isinstance(exit_["net_pnl"], float)
    [swap] = by_category["model_swaps"]
    assert swap["kind"] == "model_swapped" and swap["bot"] is None
    assert swap["data"]["version"] == second and swap["data"]["bots"] == ["mdl"]
    return by_category


def test_failing_and_hanging_receivers_never_hold_trading(
    database_url: str, strategies_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch)
    add_bots(database_url, strategies_dir, [("loud", "always")], notifiers=["tg", "hook"],
             notify_events=["entries", "exits"])  # fmt: skip
    telegram, webhook = servers()

    async def scenario() -> None:
        async with telegram, webhook:
            telegram.faults.hang = True  # holds every request until released
            webhook.faults.refuse_all = 500  # down
            running = await start_engine(
                config_for(database_url, strategies_dir),
                notifications=hub_for(telegram, webhook),
            )
            engine = running.engine
            try:
                await push(running, walk(150))
                await Aio.eventually(lambda: engine.core.metrics.entries >= 5, "entries")
                # trading went on while nothing was delivered
                assert not telegram.received and not webhook.received
                assert webhook.attempts >= 2 and telegram.attempts >= 1
                retries = engine.metrics()["notifications_retries_total"]
                assert retries >= 2
                entries_while_down = engine.core.metrics.entries
                webhook.faults.refuse_all = None  # both come back
                telegram.faults.hang = False
                telegram.faults.release.set()
                await Aio.eventually(
                    lambda: (
                        "entries" in webhook.categories()
                        and any(t.startswith("loud: entry") for t in telegram.texts())
                    ),
                    "deliveries after recovery",
                    15,
                )
                await push(running, walk(60, start_ms=START_MS + 150_000, first_id=151))
                await Aio.eventually(
                    lambda: engine.core.metrics.entries > entries_while_down, "more entries"
                )
                telegram.faults.hang = True  # hangs again: stopping must not wait for it
                telegram.faults.release.clear()
            finally:
                await Aio.within(engine.stop(), 15)
            assert engine.metrics()["notifications_sent_total"] >= 2

    Aio.run(scenario(), timeout=60)
