"""The JSON shapes the API sends, one function per shape, shared by the HTTP routes and the
events WebSocket: a screen that reads `/health` and one that listens on `/ws/events` see
the same fields for the same thing."""

from __future__ import annotations

from typing import Any

from fastapi.encoders import jsonable_encoder

from live.engine import Engine, EngineEvent, EngineStatus
from live.engine.strategies import StrategyInfo

__all__ = ["event_body", "health_body", "strategies_body", "strategy_body"]


def health_body(status: EngineStatus) -> dict[str, Any]:
    """The engine status as `GET /health` returns it (with `healthy`)."""
    body: dict[str, Any] = jsonable_encoder(status)
    body["healthy"] = status.healthy
    return body


def event_body(event: EngineEvent) -> dict[str, Any]:
    """One engine event: `{"type": "event", kind, message, bot, data, at}` (`at` ISO-8601)."""
    return {
        "type": "event",
        "kind": event.kind,
        "message": event.message,
        "bot": event.bot,
        "data": jsonable_encoder(dict(event.data)),
        "at": event.at.isoformat(),
    }


def strategy_body(info: StrategyInfo) -> dict[str, Any]:
    """One strategy as the engine's catalogue knows it; `error` is `file:line: message`."""
    return {
        "name": info.name,
        "status": info.status.value,
        "content_hash": info.content_hash,
        "version_count": info.version_count,
        "error": info.error,
        "error_line": info.error_line,
        "file_path": str(info.file_path),
        "class_name": info.class_name,
        "bots": list(info.bots),
    }


def strategies_body(engine: Engine) -> list[dict[str, Any]]:
    """Every strategy of the engine's catalogue, by name."""
    return [strategy_body(info) for info in engine.strategies.list()]
