"""Telegram: the Bot API's `sendMessage` (`POST {base_url}/bot{token}/sendMessage`).

The token and the chat id are resolved from their secret names when the notifier is built
and live only in this object; the URL that carries the token is never logged or put in an
error (see `http`). `base_url` is configurable so tests (and a self-hosted Bot API server)
can stand in for api.telegram.org. A 429 answer's `parameters.retry_after` is honoured.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from live.notify.http import check_status, post
from live.notify.messages import Notification
from live.notify.protocol import DeliveryError
from tradepipe.secrets import redact

__all__ = ["TelegramNotifier"]


class TelegramNotifier:
    def __init__(
        self,
        name: str,
        *,
        token: str,
        chat_id: str,
        base_url: str = "https://api.telegram.org",
        timeout_seconds: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._name = name
        self._url = f"{base_url.rstrip('/')}/bot{token}/sendMessage"
        self._chat_id = chat_id
        self._timeout = timeout_seconds
        self._client = client or httpx.AsyncClient(follow_redirects=False)

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:  # the default would be harmless, but say so explicitly
        return f"TelegramNotifier({self._name!r})"

    async def send(self, notification: Notification) -> None:
        body = json.dumps(
            {
                "chat_id": self._chat_id,
                "text": redact(notification.text),
                "disable_web_page_preview": True,
            }
        ).encode()
        who = f"notifier {self._name} (telegram)"
        response = await post(
            self._client,
            self._url,
            body=body,
            headers={"Content-Type": "application/json"},
            timeout_seconds=self._timeout,
            who=who,
        )
        answer = _json(response)
        retry_after = answer.get("parameters", {}).get("retry_after")
        check_status(
            response, who, float(retry_after) if isinstance(retry_after, int | float) else None
        )
        if answer.get("ok") is not True:  # a 200 that is not a success is not retried
            description = str(answer.get("description", "no description"))[:200]
            raise DeliveryError(f"{who}: refused ({description})", retryable=False)

    async def aclose(self) -> None:
        await self._client.aclose()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
