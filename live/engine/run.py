"""Running the engine as a process: `run_engine` for the CLI, `serve` for asyncio callers.

`tradepipe live run` calls `run_engine(settings)`; `python -m live.engine` does the same
with engine settings given on the command line (development and the crash tests). Both
run until SIGTERM or SIGINT, then stop gracefully (no new entries, every write flushed,
bots marked stopped) and return 0. A database that is not there is waited for, with
backoff, inside the process: the engine never exits (and never crash-loops under systemd)
because the database is late. It returns 1 only when it cannot start at all (a bug, a bad
config), after logging why.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from live.engine.compose import build_engine
from live.engine.config import EngineConfig
from live.engine.engine import Engine
from live.engine.single_engine import EngineAlreadyRunningError
from live.feeds import Feed
from tradepipe.config import Settings, load_settings
from tradepipe.secrets import redact, register_secret_value

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["configure_logging", "main", "run_engine", "serve"]

log = logging.getLogger(__name__)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """`time level logger message key=value...`: the `extra` fields stay machine-readable."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if extra:
            text += " " + " ".join(f"{key}={value!r}" for key, value in sorted(extra.items()))
        # the record factory redacts message and traceback; `extra` fields are added after it
        return redact(text)


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr in key=value form, unless the caller configured logging already."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


@dataclass(frozen=True, slots=True)
class ApiOptions:
    """Where the control API listens, and its bearer token (None: control refused)."""

    host: str
    port: int
    token: str | None
    # events a /ws/events client may have unread before it is dropped (live/api/events_ws.py)
    events_queue_size: int = 1000


async def serve(
    config: EngineConfig,
    *,
    feed: Feed | None = None,
    api: ApiOptions | None = None,
    settings: Settings | None = None,
) -> int:
    """Run an engine (and its control API, if given) until SIGTERM/SIGINT; the exit status.
    `settings` with notifiers configured adds them (their secrets resolved now)."""
    engine = build_engine(config, feed=feed, settings=settings)  # NotifierConfigError
    # The API starts before the engine so /health reports starting and reconciling too.
    api_task = None if api is None else _start_api(engine, api)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    code = 0
    try:
        starting = asyncio.create_task(engine.start(), name="engine-start")
        stopping = asyncio.create_task(stop.wait(), name="engine-stop-signal")
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            error = starting.exception()
            if isinstance(error, EngineAlreadyRunningError):
                log.error("engine refused to start: %s", error)  # the operator's to fix
                code = 1
            elif error is not None:
                log.error("engine failed to start: %r", error, exc_info=error)
                code = 1
            else:
                await stopping
        else:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        log.info("stopping engine %s", engine.engine_id)
        await engine.stop()
        stopping.cancel()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        if api_task is not None:  # after engine.stop(): /health shows "stopping" meanwhile
            api_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await api_task
    log.info("engine %s stopped", engine.engine_id)
    return code


def api_app(engine: Engine, options: ApiOptions) -> FastAPI:
    """The control API of `engine` as `options` say (the model refresh wired to its watcher)."""
    from live.api import create_app

    async def refresh_models(_model_name: str | None) -> object:
        # The watcher checks every model slot; a promotion elsewhere is found at once.
        await engine.watcher.poll()
        return "checked every model in use"

    return create_app(
        engine,
        token=options.token,
        refresh_models=refresh_models,
        events_queue_size=options.events_queue_size,
    )


def api_options(settings: Settings) -> ApiOptions:
    """Where and how `tradepipe live run` serves its API (the token registered as a secret)."""
    token = settings.engine_api_token
    return ApiOptions(
        settings.host,
        settings.engine_api_port,
        None if token is None else register_secret_value(token.get_secret_value()),
        settings.engine_events_queue_size,
    )


def _start_api(engine: Engine, options: ApiOptions) -> asyncio.Task[None]:
    from live.api import ApiServer

    app = api_app(engine, options)
    task = asyncio.create_task(ApiServer(app, options.host, options.port).serve(), name="api")

    def report(done: asyncio.Task[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("engine API stopped: %s", done.exception())

    task.add_done_callback(report)
    return task


def run_engine(settings: Settings | None = None, **overrides: Any) -> int:
    """The `tradepipe live run` entry: Settings (plus EngineConfig overrides) to exit code,
    with the control API on host:engine_api_port. Raises ValueError, naming the setting,
    for a config that cannot work."""
    current = settings or load_settings()
    configure_logging(current.log_level)
    config = EngineConfig.from_settings(current, **overrides)
    return asyncio.run(serve(config, api=api_options(current), settings=current))


def _parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    kinds: Mapping[str, Any] = {item.name: item.type for item in fields(EngineConfig)}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in kinds:
            raise SystemExit(f"--set {pair!r}: use NAME=VALUE with NAME one of {sorted(kinds)}")
        kind = str(kinds[name])
        try:
            if "bool" in kind:
                values[name] = text.strip().lower() in ("1", "true", "yes", "on")
            elif "float" in kind:
                values[name] = float(text)
            elif "int" in kind:
                values[name] = int(text)
            elif "Path" in kind:
                values[name] = Path(text)
            else:
                values[name] = text
        except ValueError:
            raise SystemExit(f"--set {pair!r}: {name} takes a {kind}") from None
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m live.engine [--database-url URL] [--feed-url WS] [--set NAME=VALUE ...]`;
    other settings come from TRADEPIPE_* and the config file, as for `tradepipe`."""
    parser = argparse.ArgumentParser(prog="python -m live.engine", description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--feed-url")
    parser.add_argument("--rest-url")
    parser.add_argument("--strategies-dir", type=Path)
    parser.add_argument("--mlflow-tracking-uri")
    parser.add_argument("--engine-id")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    overrides = _parse_overrides(args.set)
    for name in (
        "database_url",
        "feed_url",
        "rest_url",
        "strategies_dir",
        "mlflow_tracking_uri",
        "engine_id",
    ):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    try:
        return run_engine(load_settings(), **overrides)
    except ValueError as error:  # a setting out of range: one line, no traceback
        raise SystemExit(f"python -m live.engine: {error}") from None
