"""Request bodies of the control API, over a real engine and a real uvicorn on loopback:
the token is checked before a byte of the body is read, NaN and Infinity are a 422 naming
them (they were a 500), a body over the limit is a 413, and a good body still works."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from live.api.auth import NO_TOKEN_MESSAGE
from tests.api.harness import TOKEN, engine_api
from tests.engine.helpers import Aio

LIMIT = 4_096
GATE = {"app_options": {"max_body_bytes": LIMIT}}


@pytest.mark.parametrize(
    ("path", "body", "constant"),
    [
        ("/api/kill-switch", b'{"reason": NaN}', "NaN"),
        ("/api/kill-switch", b'{"reason": "x", "extra": [1, Infinity]}', "Infinity"),
        ("/api/models/refresh", b'{"model_name": "m", "version": -Infinity}', "-Infinity"),
        ("/api/bots/alpha/strategy", b'{"strategy": "always", "n": NaN}', "NaN"),
    ],
)
def test_nan_and_infinity_are_422_naming_them(
    aio: Aio, database_url: str, strategies_dir: Path, path: str, body: bytes, constant: str
) -> None:
    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir, **GATE) as api:
            headers = {**api.auth(), "Content-Type": "application/json"}
            response = await api.client.post(path, content=body, headers=headers)
            assert response.status_code == 422, response.text
            assert response.json() == {
                "error": f"{constant} is not a JSON number: send finite numbers (or a string)"
            }
            assert api.running.engine.status().kill_switch.engaged is False

    aio.run(scenario())


def test_bodies_that_are_not_json_or_nested_too_deeply_are_422(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            headers = {**api.auth(), "Content-Type": "application/json"}
            broken = await api.client.post(
                "/api/kill-switch", content=b'{"reason": ', headers=headers
            )
            assert broken.status_code == 422
            assert broken.json()["error"].startswith("request body is not JSON")
            deep = await api.client.post("/api/kill-switch", content=b"[" * 60_000, headers=headers)
            assert deep.status_code == 422
            assert deep.json() == {"error": "request body is nested too deeply"}
            good = await api.client.post(
                "/api/kill-switch", json={"reason": "operator: flash crash"}, headers=api.auth()
            )
            assert good.status_code == 200  # a good body passes the gate unchanged
            assert api.running.engine.status().kill_switch.reason == "operator: flash crash"

    aio.run(scenario())


def test_a_body_over_the_limit_is_413_declared_or_streamed(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked transfer
        yield b'{"reason": "'
        for _ in range(LIMIT // 512 + 1):
            yield b"x" * 512
        yield b'"}'

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir, **GATE) as api:
            declared = await api.client.post(
                "/api/kill-switch", json={"reason": "x" * LIMIT}, headers=api.auth()
            )
            assert declared.status_code == 413
            assert declared.json() == {
                "error": f"request body over {LIMIT} bytes: the engine's requests are small JSON"
            }
            streamed = await api.client.post(
                "/api/kill-switch", content=chunks(), headers=api.auth()
            )
            assert streamed.status_code == 413
            assert api.running.engine.status().kill_switch.engaged is False
            fits = await api.client.post(
                "/api/kill-switch",
                json={"reason": "fits", "note": "x" * (LIMIT // 2)},
                headers=api.auth(),
            )
            assert fits.status_code == 200, fits.text

    aio.run(scenario())


def test_the_token_is_checked_before_the_body(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir, **GATE) as api:
            json_headers = {"Content-Type": "application/json"}
            for body in (b'{"reason": NaN}', b"{broken", b"x" * (LIMIT * 2)):
                for headers in (json_headers, {**json_headers, **api.auth("wrong")}):
                    response = await api.client.post(
                        "/api/kill-switch", content=body, headers=headers
                    )
                    assert response.status_code == 401, (body[:20], headers)
            # A request that declares a body and never sends it: refused at once, so the
            # engine never waited for (let alone parsed) a body from an unauthorised client.
            status, answer = await _headers_only(api.port, "POST /api/kill-switch", 1_000)
            assert status == 401 and b"missing bearer token" in answer
            status, _ = await _headers_only(
                api.port, "POST /api/kill-switch", 1_000, f"Authorization: Bearer {TOKEN}x"
            )
            assert status == 401

    aio.run(scenario())


def test_without_a_configured_token_bodies_are_refused_403_unread(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir, token=None) as api:
            response = await api.client.post(
                "/api/kill-switch",
                content=b'{"reason": NaN}',
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 403
            assert response.json() == {"error": NO_TOKEN_MESSAGE}
            status, _ = await _headers_only(api.port, "POST /api/models/refresh", 500)
            assert status == 403

    aio.run(scenario())


async def _headers_only(
    port: int, request_line: str, content_length: int, *extra_headers: str
) -> tuple[int, bytes]:
    """Send a request's headers declaring `content_length` body bytes, send no body, and
    read the answer (which must come without the body: bounded wait)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = [f"{request_line} HTTP/1.1", "Host: 127.0.0.1",
                "Content-Type: application/json", f"Content-Length: {content_length}",
                *extra_headers, "", ""]  # fmt: skip
        writer.write("\r\n".join(head).encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65_536), 5.0)
    finally:
        writer.close()
        await writer.wait_closed()
    status = int(answer.split(b" ", 2)[1])
    return status, answer
