"""A generic JSON webhook: the notification POSTed as JSON to a configured URL.

With a signing secret, the body is signed with HMAC-SHA256 and the signature sent as
`X-Tradepipe-Signature: sha256=<hex>` (the scheme GitHub's webhooks use), so the receiver
can check that the message came from this engine and was not altered. The body carries a
unique `id`: a retried delivery that the receiver did get the first time can be dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from live.notify.http import check_status, post
from live.notify.messages import Notification
from tradepipe.secrets import redact

__all__ = ["SIGNATURE_HEADER", "WebhookNotifier", "sign"]

SIGNATURE_HEADER = "X-Tradepipe-Signature"


def sign(body: bytes, key: str) -> str:
    """The header value for `body` under `key`."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    def __init__(
        self,
        name: str,
        *,
        url: str,
        signing_key: str | None = None,
        timeout_seconds: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._name = name
        self._url = url
        self._key = signing_key
        self._timeout = timeout_seconds
        self._client = client or httpx.AsyncClient(follow_redirects=False)

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"WebhookNotifier({self._name!r})"

    async def send(self, notification: Notification) -> None:
        body = redact(json.dumps(notification.to_json(), sort_keys=True)).encode()
        headers = {"Content-Type": "application/json"}
        if self._key is not None:
            headers[SIGNATURE_HEADER] = sign(body, self._key)
        who = f"notifier {self._name} (webhook)"
        response = await post(
            self._client,
            self._url,
            body=body,
            headers=headers,
            timeout_seconds=self._timeout,
            who=who,
        )
        check_status(response, who)

    async def aclose(self) -> None:
        await self._client.aclose()
