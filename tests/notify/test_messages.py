"""Which engine events are notified, under which category: the vocabulary bots choose from.
Events of no category (a heartbeat-like bot start, a config change) are never sent."""

from __future__ import annotations

import pytest

from live.engine.events import EngineEvent
from live.notify import engine_category
from tradepipe.notifications import NotifyCategory


@pytest.mark.parametrize(
    ("kind", "data", "category"),
    [
        ("bot_error", {}, NotifyCategory.ERRORS),
        ("anomaly", {}, NotifyCategory.ERRORS),
        ("database_unavailable", {}, NotifyCategory.ERRORS),
        ("engine_degraded", {}, NotifyCategory.ERRORS),
        ("reconcile_unknown", {}, NotifyCategory.ERRORS),
        ("warmup_failed", {}, NotifyCategory.ERRORS),
        ("model_swapped", {}, NotifyCategory.MODEL_SWAPS),
        ("model_refused", {}, NotifyCategory.MODEL_SWAPS),
        ("model_guard_breached", {}, NotifyCategory.MODEL_SWAPS),
        ("strategy_reload_failed", {}, NotifyCategory.STRATEGY_CHANGES),
        ("bot_updated", {"changed": []}, NotifyCategory.STRATEGY_CHANGES),  # the file edited
        ("bot_reloaded", {"strategy": "ema_rsi"}, NotifyCategory.STRATEGY_CHANGES),
        ("bot_fell_back", {"from": "mine", "to": "ema_rsi"}, NotifyCategory.STRATEGY_CHANGES),
        ("bot_updated", {"changed": ["strategy"]}, NotifyCategory.STRATEGY_CHANGES),
        ("bot_updated", {"changed": ["config"]}, None),
        ("model_loaded", {}, None),  # at start: not a swap
        ("order_rejected", {}, None),  # the book's OrderRejected tells it, once
        ("bot_started", {}, None),
        ("engine_reconciled", {}, None),
    ],
)
def test_categories(kind: str, data: dict[str, object], category: NotifyCategory | None) -> None:
    assert engine_category(EngineEvent(kind, "m", "alpha", data)) is category
