"""Tell the running live engine that a model has a new champion, so it swaps now.

The engine polls the registry for new champions anyway; this call only saves it the wait.
That is why nothing here can fail the DAG: an engine that is not running (connection
refused, timeout) or that answers with an error is logged and reported in the task's
result, and the promotion stands.

The call, one per promoted model (the engine's control API, issue 5):

    POST {engine_api_url}/api/models/refresh
    Content-Type: application/json
    Authorization: Bearer {TRADEPIPE_ENGINE_API_TOKEN}
    {"model_name": "btcusdt_1m_triple_barrier", "version": "3", "alias": "champion"}

Any 2xx answer means the engine has taken note (it loads, checks and swaps on its own
schedule and refuses a version that fails its check). The route is a control route: the
engine refuses it without its bearer token (401, or 403 when the engine has none set), so
the Airflow processes need the engine's TRADEPIPE_ENGINE_API_TOKEN too. The standard
library's urllib is enough for one small POST and keeps the task free of another HTTP client.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["REFRESH_PATH", "notify_engine"]

REFRESH_PATH = "/api/models/refresh"
ENGINE_NOT_RUNNING = "engine not running"
_TOKEN_HINT = "give the Airflow processes the engine's TRADEPIPE_ENGINE_API_TOKEN"

log = logging.getLogger(__name__)


def notify_engine(
    outcomes: Iterable[Mapping[str, Any] | None] | Mapping[str, Any] | None,
    base_url: str,
    *,
    token: str | None = None,
    timeout_seconds: float = 5.0,
) -> dict[str, Any]:
    """POST a refresh for every promoted model in `outcomes`, the promote results of the
    specs whose chain succeeded. Returns what happened; never raises for the engine.

    One result may come as itself, not as a one-element list, and none as None: Airflow
    3.3 collapses the XCom of a mapped task group read from outside the group when a single
    value exists (apache/airflow#69036), e.g. one spec, or all but one failed.
    """
    if outcomes is None:
        outcomes = []
    elif isinstance(outcomes, Mapping):
        outcomes = [outcomes]
    promoted = [
        {"model_name": str(item["model_name"]), "version": str(item["version"])}
        for item in outcomes
        if isinstance(item, Mapping) and item.get("promoted")
    ]
    url = base_url.rstrip("/") + REFRESH_PATH
    if not promoted:
        return {"status": "nothing promoted", "url": url, "notified": []}
    notified: list[dict[str, str]] = []
    failures: list[dict[str, str]] = []
    for model in promoted:
        status = _post(url, model | {"alias": "champion"}, token, timeout_seconds)
        if status == ENGINE_NOT_RUNNING:
            # The engine is down for all of them: no point trying the others.
            log.warning("engine at %s is not running: it loads the new champion on start", url)
            return {"status": ENGINE_NOT_RUNNING, "url": url, "notified": notified}
        if status == "ok":
            notified.append(model)
        else:
            log.warning("engine at %s refused the refresh of %s: %s", url, model, status)
            failures.append(model | {"error": status})
    return {
        "status": "ok" if not failures else "engine answered with errors",
        "url": url,
        "notified": notified,
        "errors": failures,
    }


def _post(url: str, body: Mapping[str, str], token: str | None, timeout_seconds: float) -> str:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            return f"HTTP {error.code} {error.reason}: {_TOKEN_HINT}"
        return f"HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        log.info("engine not reachable at %s: %s", url, getattr(error, "reason", error))
        return ENGINE_NOT_RUNNING
    return "ok" if 200 <= status < 300 else f"HTTP {status}"
