"""The host name a Celery worker of the test cluster reports for its task instances.

Airflow records `task_instance.hostname` from `[core] hostname_callable` (the machine's
FQDN by default). The test's two workers share one machine, so each names itself through
CELERY_TEST_WORKER_NAME instead; in production each worker is its own host (container).
"""

from __future__ import annotations

import os


def worker_name() -> str:
    return os.environ["CELERY_TEST_WORKER_NAME"]
