"""Background services with pid files: start, recognise, health-check and stop them.

`tradepipe up` starts each service of the embedded stack as its own process group (a new
session), with stdout and stderr in `<run_dir>/<name>.log` and a pid file
`<run_dir>/<name>.pid` holding the group leader's pid, its process group and its start time
(from /proc). Why the start time: a pid file left by a crashed or rebooted machine may name
a pid that the kernel has since given to an unrelated process; a service counts as running
only if that pid is alive AND started when the pid file says, so `tradepipe down` can never
signal a stranger, and `tradepipe up` never mistakes one for a running service.

Stopping signals the whole process group (Airflow standalone, the dashboard launcher and
the MLflow server all fork workers): SIGTERM, a bounded wait until no process of the group
is left, then SIGKILL. Only groups named by our own pid files are ever signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "RunningService",
    "ServiceError",
    "ServiceSpec",
    "group_members",
    "http_ok",
    "read_pid_file",
    "running",
    "start",
    "stop",
    "wait_healthy",
]


class ServiceError(RuntimeError):
    """A service that did not start or answer; the message names it and its log file."""


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """How to start one service and how to tell that it is serving."""

    name: str
    argv: Sequence[str]
    health_url: str
    url: str  # what a person opens
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    # Besides answering 2xx, what the health answer must satisfy (None: any 2xx body).
    health_check: Callable[[bytes], bool] | None = None


@dataclass(frozen=True, slots=True)
class RunningService:
    name: str
    pid: int
    pgid: int
    started: str  # the process start time (clock ticks since boot, from /proc/<pid>/stat)
    argv: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "pgid": self.pgid,
                "started": self.started,
                "argv": list(self.argv),
            }
        )


def pid_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def log_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.log"


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (after the parenthesised command name), or None when
    no such process exists or it is a zombie (dead, waiting for its parent)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return fields[19]


def read_pid_file(run_dir: Path, name: str) -> RunningService | None:
    """The pid file's record, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads(pid_path(run_dir, name).read_text())
        return RunningService(
            name, int(data["pid"]), int(data["pgid"]), str(data["started"]), tuple(data["argv"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(run_dir: Path, name: str) -> RunningService | None:
    """The service as recorded, if its group leader is still the process we started."""
    record = read_pid_file(run_dir, name)
    if record is None or _start_time(record.pid) != record.started:
        return None
    return record


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids whose process group is `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def start(spec: ServiceSpec, run_dir: Path) -> RunningService:
    """Start `spec` in a new session (its own process group), output to its log file."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log = log_path(run_dir, spec.name)
    with log.open("ab") as output:
        output.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} start\n".encode())
        output.flush()
        try:
            process = subprocess.Popen(
                list(spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=dict(spec.env) if spec.env else None,
                cwd=spec.cwd,
                start_new_session=True,
            )
        except OSError as error:
            raise ServiceError(f"{spec.name}: cannot start {spec.argv[0]}: {error}") from None
    started = _start_time(process.pid) or "?"
    record = RunningService(spec.name, process.pid, process.pid, started, tuple(spec.argv))
    pid_path(run_dir, spec.name).write_text(record.to_json() + "\n")
    return record


def stop(run_dir: Path, name: str, timeout_seconds: float = 30.0) -> list[int]:
    """Stop the service's process group (SIGTERM, then SIGKILL after `timeout_seconds`);
    remove its pid file. Returns the pids that were signalled ([] if it was not running)."""
    record = running(run_dir, name)
    signalled: list[int] = []
    if record is not None:
        signalled = group_members(record.pgid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_seconds
        while group_members(record.pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if group_members(record.pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pgid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while group_members(record.pgid) and time.monotonic() < deadline:
                time.sleep(0.1)
    pid_path(run_dir, name).unlink(missing_ok=True)
    return signalled


def http_ok(url: str, check: Callable[[bytes], bool] | None = None, timeout: float = 5.0) -> bool:
    """True when `url` answers 2xx (and its body passes `check`, if given)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return check is None or check(body)


def wait_healthy(
    specs: Sequence[ServiceSpec],
    run_dir: Path,
    timeout_seconds: float,
    on_ready: Callable[[ServiceSpec], None] | None = None,
) -> None:
    """Wait until every service answers its health check. Raises ServiceError naming the
    first service whose process exited, or every one still silent at the deadline, each
    with its log file."""
    waiting = list(specs)
    deadline = time.monotonic() + timeout_seconds
    while waiting:
        for spec in list(waiting):
            if running(run_dir, spec.name) is None:
                raise ServiceError(
                    f"{spec.name} exited before answering {spec.health_url}: "
                    f"see {log_path(run_dir, spec.name)}"
                )
            if http_ok(spec.health_url, spec.health_check):
                waiting.remove(spec)
                if on_ready is not None:
                    on_ready(spec)
        if not waiting:
            return
        if time.monotonic() > deadline:
            silent = "; ".join(
                f"{spec.name} ({spec.health_url}, log {log_path(run_dir, spec.name)})"
                for spec in waiting
            )
            raise ServiceError(f"no healthy answer within {timeout_seconds:.0f} s from: {silent}")
        time.sleep(0.5)
