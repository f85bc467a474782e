"""The HTTP part both notifiers share: one POST, its failures as `DeliveryError`s.

httpx rather than aiohttp because its timeouts and errors are typed and simple; a total
deadline per request (`asyncio.timeout`) on top of httpx's per-phase timeouts, so a server
that trickles bytes cannot hold a delivery for longer than `timeout_seconds`.
"""

from __future__ import annotations

import asyncio

import httpx

from live.notify.protocol import DeliveryError

__all__ = ["check_status", "post"]


async def post(
    client: httpx.AsyncClient,
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout_seconds: float,
    who: str,
) -> httpx.Response:
    """POST `body` and return the response, whatever its status; network trouble and the
    deadline raise a retryable DeliveryError naming `who` (never `url`)."""
    try:
        async with asyncio.timeout(timeout_seconds):
            return await client.post(url, content=body, headers=headers)
    except TimeoutError:
        raise DeliveryError(f"{who}: no answer within {timeout_seconds:g} s") from None
    except httpx.HTTPError as error:
        # the class only: httpx messages can quote the request URL
        raise DeliveryError(f"{who}: {error.__class__.__name__}") from None


def check_status(response: httpx.Response, who: str, retry_after: float | None = None) -> None:
    """Raise DeliveryError unless 2xx: 5xx and 429 are retryable, other 4xx are not."""
    if response.is_success:
        return
    status = response.status_code
    if retry_after is None:
        retry_after = _retry_after(response)
    raise DeliveryError(
        f"{who}: HTTP {status}", retryable=status >= 500 or status == 429, retry_after=retry_after
    )


def _retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("retry-after")
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        return None
