"""Routing: which notifier hears which event, as each bot's config says.

A bot config names notifiers (`notifiers`) and the categories it wants (`notify_events`).
An event of one bot goes to that bot's notifiers if the bot chose the event's category. An
engine-level event goes to the notifiers of the bots it concerns (`data["bots"]`, as model
swaps list the bots using the model) or, when it names none (the database went away), of
every bot; each notifier gets one copy however many bots route it there.

The hub is called synchronously from the engine (an `EventBus` subscriber and an order
listener of the trading core): it only formats and queues (`Delivery.offer`), never waits,
and never raises into the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from live.engine.events import EngineEvent
from live.notify.delivery import Delivery
from live.notify.messages import Notification, from_engine_event, from_order_event
from tradepipe.botconfig import BotConfig
from tradepipe.orders import Event

__all__ = ["NotificationHub"]

log = logging.getLogger(__name__)


class _NamedConfig(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def config(self) -> BotConfig: ...


class NotificationHub:
    def __init__(self, deliveries: Iterable[Delivery]) -> None:
        self.deliveries: dict[str, Delivery] = {d.name: d for d in deliveries}
        self._configs: dict[str, BotConfig] = {}
        self._warned: set[tuple[str, str]] = set()

    # -- what the bots want ----------------------------------------------------------------

    def update_bots(self, bots: Iterable[_NamedConfig]) -> None:
        """The bots as the bots table has them now (configs of bots not running count too:
        a bot refused at start still wants to hear about its error)."""
        self._configs = {bot.name: bot.config for bot in bots}
        for name, config in self._configs.items():
            for notifier in config.notifiers:
                if notifier not in self.deliveries and (name, notifier) not in self._warned:
                    self._warned.add((name, notifier))
                    log.warning(
                        "bot %s names notifier %s, which is not configured (setting "
                        "`notifiers`): its notifications there are not sent",
                        name,
                        notifier,
                        extra={"bot": name, "notifier": notifier},
                    )

    def targets(self, notification: Notification, bots: Sequence[str] | None) -> set[str]:
        """The notifiers that `notification` goes to; `bots` are the bots it concerns
        (None: every bot)."""
        concerned = self._configs if bots is None else {b: self._configs.get(b) for b in bots}
        names: set[str] = set()
        for config in concerned.values():
            if config is not None and notification.category in config.notify_events:
                names.update(n for n in config.notifiers if n in self.deliveries)
        return names

    # -- what happens ----------------------------------------------------------------------

    def on_engine_event(self, event: EngineEvent) -> None:
        try:
            notification = from_engine_event(event)
            if notification is None:
                return
            if event.bot is not None:
                bots: Sequence[str] | None = [event.bot]
            else:
                listed = event.data.get("bots")
                bots = [str(b) for b in listed] if isinstance(listed, list | tuple) else None
            self._offer(notification, bots)
        except Exception:  # never into the engine's bus
            log.exception("notifications: engine event %s not routed", event.kind)

    def on_order_events(self, bot: str, symbol: str, events: Sequence[Event]) -> None:
        if bot not in self._configs or not self._configs[bot].notifiers:
            return  # the common case, and cheap: the bot wants no notifications
        try:
            for event in events:
                notification = from_order_event(event, symbol)
                if notification is not None:
                    self._offer(notification, [bot])
        except Exception:  # never into a trading step
            log.exception("notifications: order events of bot %s not routed", bot)

    def _offer(self, notification: Notification, bots: Sequence[str] | None) -> None:
        for name in sorted(self.targets(notification, bots)):
            self.deliveries[name].offer(notification)

    # -- lifecycle and figures ---------------------------------------------------------------

    def start(self) -> None:
        for delivery in self.deliveries.values():
            delivery.start()

    async def close(self, timeout_seconds: float) -> None:
        for delivery in self.deliveries.values():
            await delivery.close(timeout_seconds / max(1, len(self.deliveries)))

    def metrics(self) -> Mapping[str, float]:
        """Totals over every notifier, for /metrics."""
        counts = [d.counts for d in self.deliveries.values()]
        return {
            "notifications_sent_total": sum(c.sent for c in counts),
            "notifications_failed_total": sum(c.failed for c in counts),
            "notifications_dropped_total": sum(c.dropped for c in counts),
            "notifications_retries_total": sum(c.retries for c in counts),
            "notifications_pending": sum(d.pending for d in self.deliveries.values()),
        }
