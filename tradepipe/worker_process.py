"""Work that may crash or hang, done in a separate, reusable worker process.

Some checks have to run code the caller cannot trust: a strategy file (which may loop
forever at import or call `os._exit`), a model artifact (a truncated LightGBM file makes
LightGBM's C++ code call `std::terminate`, which aborts the whole process). Run in the
caller, such code takes the caller down with it; run here, it takes only the worker, and the
caller gets an exception that says what happened. The strategy validation
(`tradepipe.strategy.preflight`) and the live engine's model check
(`live.model_check`) both run their workers through this module.

The parent side, `WorkerProcess`, starts `python -m <module>` on first use and reuses it;
calls are serialised (a lock) and may come from any thread. A call that does not answer
within its timeout kills the worker (`WorkerTimeoutError`); a worker that dies while
answering (a signal, an exit) is `WorkerDiedError` naming the signal and the last lines the
worker wrote to stderr (LightGBM's "[Fatal] ..." line, say). Either way, the next call
starts a fresh worker.

The worker side, `serve(handle)`, answers requests with `handle(request)` until the parent
closes the pipe. Requests and answers are length-prefixed pickles over the worker's stdin
and stdout; whatever the untrusted code prints goes to stderr, so it cannot corrupt them.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

__all__ = [
    "WORKER_START_SECONDS",
    "WorkerDiedError",
    "WorkerError",
    "WorkerProcess",
    "WorkerStartError",
    "WorkerTimeoutError",
    "describe_exit",
    "serve",
]

# A fresh interpreter imports the worker's module (numpy, pandas, maybe mlflow) before it
# says it is ready: on a loaded machine that can take many seconds.
WORKER_START_SECONDS = 60.0
READY = "ready"
# Lines of the worker's stderr kept for the message of a death.
OUTPUT_LINES = 3
OUTPUT_LINE_CHARS = 300


class WorkerError(Exception):
    """The worker gave no answer; the message says why (one line)."""


class WorkerStartError(WorkerError):
    """The worker did not start (an import error, a machine too loaded)."""


class WorkerTimeoutError(WorkerError):
    """No answer within the call's timeout: the worker was killed."""


class WorkerDiedError(WorkerError):
    """The worker died while answering (killed by a signal, or exited)."""

    def __init__(self, message: str, returncode: int | None) -> None:
        super().__init__(message)
        self.returncode = returncode


def describe_exit(returncode: int | None) -> str:
    """`killed by SIGABRT`, `exited with status 3`: how a process ended."""
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


# -- the parent side -------------------------------------------------------------------------


class WorkerProcess:
    """One worker running `python -m <module>`; see the module docstring.

    `description` names the worker in messages ("the model check process").
    """

    def __init__(
        self,
        module: str,
        *,
        description: str,
        start_seconds: float = WORKER_START_SECONDS,
    ) -> None:
        self.module = module
        self.description = description
        self.start_seconds = start_seconds
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: _PipeConnection | None = None
        self._output: _OutputTail | None = None

    @property
    def pid(self) -> int | None:
        """The running worker's process id (None before the first call or after a kill)."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> None:
        """Start the worker now (if it is not running): the first call then does not pay
        for the start. Raises WorkerStartError."""
        with self._lock:
            self._ensure_worker()

    def call(self, request: object, timeout: float) -> Any:
        """`handle(request)` in the worker, within `timeout` seconds (not counting the
        worker's start). Raises a WorkerError when there is no answer."""
        with self._lock:
            connection = self._ensure_worker()
            assert self._output is not None
            self._output.clear()  # a death message quotes what this call printed
            try:
                connection.send(request)
            except OSError:
                raise self._died() from None
            if not connection.poll(timeout):
                self._kill()
                raise WorkerTimeoutError(
                    f"{self.description} did not answer within {timeout:g} s and was killed"
                )
            try:
                return connection.recv()
            except (EOFError, OSError):
                raise self._died() from None

    def close(self) -> None:
        """Ask the worker to stop, kill it if it does not. A call in flight (another
        thread) is not waited for: the worker is killed and that call fails at once."""
        if not self._lock.acquire(timeout=0.2):
            process = self._process
            if process is not None:
                with contextlib.suppress(OSError):
                    process.kill()
            self._lock.acquire()
        try:
            if self._connection is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._connection.send(None)
            if self._process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(2.0)
            self._kill()
        finally:
            self._lock.release()

    def _ensure_worker(self) -> _PipeConnection:
        if self._process is not None and self._process.poll() is None and self._connection:
            return self._connection
        self._kill()
        # A fresh interpreter, not a fork: the caller may be a threaded asyncio engine (a
        # forked child can inherit locks held by threads that do not exist in it), and not
        # multiprocessing's spawn either, which re-imports the caller's __main__.
        process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # the terminal's Ctrl-C is for the caller
        )
        assert process.stdin and process.stdout and process.stderr
        connection = _PipeConnection(process.stdout, process.stdin)
        output = _OutputTail(process.stderr)
        self._process, self._connection, self._output = process, connection, output
        answered = connection.poll(self.start_seconds)
        try:
            ready = answered and connection.recv() == READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            returncode = process.poll()
            if answered and returncode is None:  # its stdout closed: it is exiting
                with contextlib.suppress(subprocess.TimeoutExpired):
                    returncode = process.wait(2.0)
            self._kill()
            why = f"it {describe_exit(returncode)}" if returncode is not None else "timed out"
            raise WorkerStartError(f"{self.description} did not start ({why}){output.quoted()}")
        return connection

    def _died(self) -> WorkerDiedError:
        process, output = self._process, self._output
        returncode = None
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                returncode = process.wait(5.0)
        if output is not None:
            output.finish(1.0)
        quoted = output.quoted() if output is not None else ""
        self._kill()
        return WorkerDiedError(
            f"{self.description} {describe_exit(returncode)}{quoted}", returncode
        )

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5.0)
        if self._connection is not None:
            self._connection.close()
        if self._output is not None:
            self._output.finish(1.0)
        self._process = self._connection = self._output = None


class _OutputTail:
    """Forwards the worker's stderr to ours (what a strategy prints stays visible) and
    keeps its last lines for the message of a death."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lines: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, name="worker-stderr", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in iter(self._stream.readline, b""):
                text = raw.decode("utf-8", "replace")
                with contextlib.suppress(Exception):  # a closed or replaced sys.stderr
                    sys.stderr.write(text)
                # a reason quoting it must be one readable line
                line = "".join(c if c.isprintable() else "?" for c in text.strip())
                if line:
                    with self._lock:
                        self._lines.append(line[:OUTPUT_LINE_CHARS])

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()

    def finish(self, timeout: float) -> None:
        """Wait (a little) for what a dead worker wrote last, then close the pipe."""
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        with contextlib.suppress(OSError, ValueError):
            self._stream.close()

    def quoted(self) -> str:
        with self._lock:
            lines = list(self._lines)
        return f"; its last output: {' | '.join(lines)}" if lines else ""


class _PipeConnection:
    """Length-prefixed pickles over a pair of pipes (the worker's stdin and stdout)."""

    def __init__(self, reader: IO[bytes], writer: IO[bytes]) -> None:
        self._reader, self._writer = reader, writer

    def send(self, message: object) -> None:
        data = pickle.dumps(message)
        self._writer.write(struct.pack("!I", len(data)) + data)
        self._writer.flush()

    def poll(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._reader], [], [], timeout)
        return bool(ready)

    def recv(self) -> Any:
        header = self._read(4)
        (size,) = struct.unpack("!I", header)
        return pickle.loads(self._read(size))

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self._reader.read(size - len(data))
            if not chunk:
                raise EOFError("the other end closed the pipe")
            data += chunk
        return data

    def close(self) -> None:
        for stream in (self._reader, self._writer):
            with contextlib.suppress(OSError, ValueError):
                stream.close()


# -- the worker side -------------------------------------------------------------------------


def serve(handle: Callable[[Any], object]) -> None:
    """The worker's main loop: `handle(request)` for each request until the parent closes
    the pipe (or sends None). Call it once the worker's own setup is done: the parent counts
    the worker started when this says it is ready."""
    # Answers go to what was stdout; everything printed from here on goes to stderr.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's Ctrl-C is the parent's
    connection = _PipeConnection(sys.stdin.buffer, answers)
    connection.send(READY)
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        connection.send(handle(request))
