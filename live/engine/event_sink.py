"""Where an engine event goes: the log, the events table (through the recorder) and the
in-process bus (live/engine/events.py). One function, so the parts built before the trading
core (the broker, the evidence writer) report their events the same way the core does."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from live.engine.events import EngineEvent, EventBus
from live.engine.persistence import EventWrite
from live.engine.recorder import Recorder
from tradepipe.secrets import redact

__all__ = ["emit_event"]

log = logging.getLogger(__name__)


def emit_event(
    recorder: Recorder,
    bus: EventBus,
    kind: str,
    message: str,
    bot: str | None = None,
    data: Mapping[str, object] | None = None,
) -> None:
    # a secret inside an error text (an exchange echoing a request) stops here
    event = EngineEvent(kind, redact(message), bot, dict(data or {}))
    level = logging.ERROR if kind.endswith(("error", "refused")) else logging.INFO
    log.log(level, "%s: %s", kind, message, extra={"event": kind, "bot": bot})
    recorder.submit(EventWrite(event))
    bus.publish(event)
