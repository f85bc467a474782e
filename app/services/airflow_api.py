"""A small client of Airflow 3's REST API (v2): log in, list DAGs, trigger a run, wait for it.

Why not Airflow's own client package: this runs in `tradepipe up` and the tests, against
the `airflow standalone` that `up` started; the few calls it needs are plain JSON over
HTTP, and importing Airflow here would pin its process-wide configuration into the CLI.

Authentication is the simple auth manager's: POST /auth/token with the user's name and
password returns a JWT, sent as `Authorization: Bearer ...` with every call.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["TERMINAL_STATES", "AirflowApi", "AirflowApiError"]

TERMINAL_STATES = frozenset({"success", "failed"})


class AirflowApiError(RuntimeError):
    """A call that failed; the message names the call and Airflow's answer."""


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        answer = self._call(
            "POST", "/auth/token", {"username": username, "password": password}, auth=False
        )
        self._token = str(answer["access_token"])

    def dag_ids(self) -> list[str]:
        answer = self._call("GET", "/api/v2/dags?limit=100")
        return sorted(str(dag["dag_id"]) for dag in answer["dags"])

    def import_errors(self) -> list[dict[str, Any]]:
        answer = self._call("GET", "/api/v2/importErrors?limit=100")
        errors: list[dict[str, Any]] = answer["import_errors"]
        return errors

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, run_id: str) -> str:
        """A manual run without a logical date (its tasks use the period before now)."""
        body: dict[str, Any] = {"dag_run_id": run_id, "logical_date": None, "conf": {}}
        answer = self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
        return str(answer["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        quoted = urllib.parse.quote(run_id, safe="")
        answer = self._call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}")
        return str(answer["state"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        quoted = urllib.parse.quote(run_id, safe="")
        answer = self._call(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=100"
        )
        states = {}
        for item in answer["task_instances"]:
            key = item["task_id"]
            if item.get("map_index", -1) >= 0:
                key = f"{key}[{item['map_index']}]"
            states[key] = str(item.get("state"))
        return states

    def wait_for_run(self, dag_id: str, run_id: str, timeout_seconds: float) -> str:
        """Poll the run until it succeeds or fails; its final state, or AirflowApiError at
        the deadline naming the run's last state."""
        deadline = time.monotonic() + timeout_seconds
        state = "?"
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_STATES:
                return state
            time.sleep(2)
        raise AirflowApiError(f"{dag_id} run {run_id} still {state} after {timeout_seconds:.0f} s")

    def wait_for_dag(self, dag_id: str, timeout_seconds: float) -> None:
        """Wait until the DAG processor has parsed `dag_id` (the API knows it)."""
        deadline = time.monotonic() + timeout_seconds
        while dag_id not in self.dag_ids():
            if time.monotonic() > deadline:
                errors = "; ".join(str(e.get("filename")) for e in self.import_errors())
                raise AirflowApiError(
                    f"DAG {dag_id} not parsed after {timeout_seconds:.0f} s"
                    + (f" (import errors in {errors})" if errors else "")
                )
            time.sleep(1)

    def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        auth: bool = True,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if auth:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise AirflowApiError(f"{method} {path}: HTTP {error.code} {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            raise AirflowApiError(f"{method} {path}: {error}") from None
        return answer


def manual_run_id(prefix: str) -> str:
    """A run id naming who triggered it and when (UTC), unique per second."""
    return f"{prefix}__{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S')}"
