"""Notifications: engine and order events to Telegram and JSON webhooks, off the trading path.

- `messages`: which events are notified (categories bots choose) and their text and data;
- `protocol`: the `Notifier` seam; `telegram` and `webhook` implement it over `http`;
- `delivery`: per notifier a bounded queue, a background task, retries with backoff;
- `hub`: routing by each bot's config, fed by the engine's event bus and order events;
- `factory`: notifiers from the settings, resolving their secrets by name.
"""

from live.notify.delivery import Delivery, DeliveryCounts
from live.notify.factory import NotifierConfigError, build_hub, build_notifier
from live.notify.hub import NotificationHub
from live.notify.messages import Notification, engine_category
from live.notify.protocol import DeliveryError, Notifier
from live.notify.telegram import TelegramNotifier
from live.notify.webhook import SIGNATURE_HEADER, WebhookNotifier, sign

__all__ = [
    "SIGNATURE_HEADER",
    "Delivery",
    "DeliveryCounts",
    "DeliveryError",
    "Notification",
    "NotificationHub",
    "Notifier",
    "NotifierConfigError",
    "TelegramNotifier",
    "WebhookNotifier",
    "build_hub",
    "build_notifier",
    "engine_category",
    "sign",
]
