"""The worker-process mechanism itself (tradepipe/worker_process.py): a worker that cannot
start says why, quoting its own last words; how a process ended reads as words. The calls,
timeouts and deaths are exercised through its two users (tests/strategy/test_preflight.py,
tests/engine/test_model_check.py)."""

from __future__ import annotations

import signal

import pytest

from tradepipe.worker_process import WorkerProcess, WorkerStartError, describe_exit


def test_a_worker_that_cannot_start_says_why() -> None:
    worker = WorkerProcess("tradepipe.no_such_worker_module", description="the test worker")
    try:
        with pytest.raises(WorkerStartError) as raised:
            worker.start()
    finally:
        worker.close()
    message = str(raised.value)
    assert message.startswith("the test worker did not start (it exited with status 1)")
    assert "No module named tradepipe.no_such_worker_module" in message
    assert worker.pid is None


def test_how_a_process_ended_reads_as_words() -> None:
    assert describe_exit(-signal.SIGABRT) == "was killed by SIGABRT"
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(None) == "stopped answering"
