"""uvicorn inside the engine's event loop.

One loop for both means the routes call the engine directly, with no thread hand-off. The
engine process owns SIGTERM/SIGINT (graceful stop, see live/engine/run.py), so uvicorn's
own signal capture is switched off here; the API stops when its task is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

__all__ = ["ApiServer", "serve_api"]


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the engine process handles signals


class ApiServer:
    """A uvicorn server for `app`; `port` 0 binds a free port, read back from `port`."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        # The read rule (live/api/auth.py) opens reads to loopback peers. A reverse proxy on
        # this host is a loopback peer too, so the client address it forwards
        # (X-Forwarded-For) is trusted from loopback only, and the rule applies to the real
        # client; set here rather than left to uvicorn's environment-dependent default.
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1,::1",
        )
        self._server = _QuietServer(config)
        self.host = host
        self._port = port
        self._failed: str | None = None

    @property
    def started(self) -> bool:
        return self._server.started

    @property
    def port(self) -> int:
        """The bound port (only once started)."""
        if not self._server.started or not self._server.servers:
            raise RuntimeError("the API server is not listening yet")
        port: int = self._server.servers[0].sockets[0].getsockname()[1]
        return port

    async def serve(self) -> None:
        """Serve until cancelled (or `shutdown`), then close connections cleanly."""
        try:
            await self._server.serve()
        except SystemExit:
            # uvicorn exits the process when it cannot bind: here that would kill the engine
            self._failed = f"engine API could not listen on {self.host}:{self._port}"
            raise OSError(self._failed) from None
        except asyncio.CancelledError:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._server.shutdown()
            raise

    async def wait_started(self, timeout: float = 10.0) -> int:
        """Wait until listening; the bound port."""
        async with asyncio.timeout(timeout):
            while not self._server.started:
                if self._failed is not None:
                    raise OSError(self._failed)
                await asyncio.sleep(0.01)
        return self.port

    def shutdown(self) -> None:
        self._server.should_exit = True


async def serve_api(app: FastAPI, host: str, port: int) -> None:
    """Serve `app` on host:port in the running loop until cancelled."""
    await ApiServer(app, host, port).serve()
