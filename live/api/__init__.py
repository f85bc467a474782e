"""The engine's control API: health, Prometheus metrics, bots, strategies, kill switch,
model refresh, and the events WebSocket.

It runs inside the engine process, on the engine's own event loop (`serve_api`), so every
route reads the engine's frozen snapshots and awaits its control methods directly: no
threads, no locks, no second copy of the state.
"""

from live.api.app import create_app
from live.api.server import ApiServer, serve_api

__all__ = ["ApiServer", "create_app", "serve_api"]
