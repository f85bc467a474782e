"""The supervisor on small real processes: a group is stopped whole, a pid file that names
someone else's process is never acted on, and a service that dies is named with its log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.services import supervisor
from app.services.supervisor import ServiceError, ServiceSpec, group_members
from tests.support import eventually

# A parent that starts a child in its own process group and waits: stop must get both.
PARENT_AND_CHILD = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    "print('ready', flush=True); time.sleep(600)"
)


def _spec(name: str, code: str, health_url: str = "http://127.0.0.1:1/") -> ServiceSpec:
    return ServiceSpec(name, [sys.executable, "-c", code], health_url, health_url)


def test_stop_ends_the_whole_group_and_removes_the_pid_file(tmp_path: Path) -> None:
    record = supervisor.start(_spec("pair", PARENT_AND_CHILD), tmp_path)
    try:
        assert supervisor.running(tmp_path, "pair") == record
        log = tmp_path / "pair.log"
        eventually(
            lambda: "ready" in log.read_text() and len(group_members(record.pgid)) == 2,
            "the service and its child to run",
            timeout=10,
        )
        signalled = supervisor.stop(tmp_path, "pair", timeout_seconds=10)
        assert record.pid in signalled and len(signalled) == 2
        assert group_members(record.pgid) == []
        assert not (tmp_path / "pair.pid").exists()
        assert supervisor.stop(tmp_path, "pair") == []  # stopping again: nothing to do
    finally:
        if group_members(record.pgid):
            supervisor.stop(tmp_path, "pair", timeout_seconds=1)


def test_a_pid_file_naming_a_reused_pid_is_not_acted_on(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        # As if our service had died and the kernel had given its pid to `stranger`.
        (tmp_path / "ghost.pid").write_text(
            json.dumps({"pid": stranger.pid, "pgid": stranger.pid, "started": "1", "argv": []})
        )
        assert supervisor.running(tmp_path, "ghost") is None
        assert supervisor.stop(tmp_path, "ghost", timeout_seconds=1) == []
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_service_that_exits_is_named_with_its_log(tmp_path: Path) -> None:
    spec = _spec("broken", "import sys; print('cannot bind'); sys.exit(3)")
    record = supervisor.start(spec, tmp_path)
    with pytest.raises(ServiceError) as raised:
        supervisor.wait_healthy([spec], tmp_path, timeout_seconds=60)
    message = str(raised.value)
    assert message.startswith("broken exited before answering")
    assert str(tmp_path / "broken.log") in message
    assert "cannot bind" in (tmp_path / "broken.log").read_text()
    assert group_members(record.pgid) == []


def test_a_silent_service_is_named_at_the_deadline(tmp_path: Path) -> None:
    spec = _spec("mute", "import time; time.sleep(600)")
    supervisor.start(spec, tmp_path)
    try:
        with pytest.raises(ServiceError, match=r"no healthy answer within 1 s from: mute \("):
            supervisor.wait_healthy([spec], tmp_path, timeout_seconds=1)
    finally:
        supervisor.stop(tmp_path, "mute", timeout_seconds=5)
