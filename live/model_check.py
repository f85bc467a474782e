"""A model version loaded and tried in a separate process before the engine loads it.

Loading a model is running native code on a file: a truncated LightGBM file makes
LightGBM's C++ parser call `std::terminate`, which aborts the process that loads it, and a
restarted engine loading the same champion aborts again (a crash loop). So before the model
watcher loads a version in the engine, `ModelChecker.check` loads it in a worker process
(`tradepipe.worker_process`) and predicts one row of the width the model declares (its
signature's features, else its feature spec's). The answer is `ModelCheckResult`: ok, or
the reason it may not trade, whether the load raised, the prediction failed, the worker
was killed by a signal (the reason names it and quotes the worker's last output, LightGBM's
own message) or did not answer in time (then it is killed). The engine never crashes for a
model; only the worker does, and the next check starts a new one.

The worker loads the version the way the engine does (`tradepipe.registry.ModelRegistry`),
so what passes here loads there. It is started once and reused: importing mlflow costs
seconds, loading a small model milliseconds. This module lives beside `live.engine`, not in
it, so that the worker does not import the engine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from tradepipe.worker_process import (
    WorkerDiedError,
    WorkerProcess,
    WorkerStartError,
    WorkerTimeoutError,
    serve,
)

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "ModelCheckResult", "ModelChecker"]

DEFAULT_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ModelCheckResult:
    """`ok`, or `reason` says why the version may not trade; `seconds` of the whole check."""

    name: str
    version: str
    ok: bool
    reason: str | None
    seconds: float


class ModelChecker:
    """Checks of the versions in the registry at `tracking_uri`, in one worker process;
    calls are serialised and may come from any thread. `close()` stops the worker."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        worker: WorkerProcess | None = None,
    ) -> None:
        """`worker`: by default `python -m live.model_check` (another one in tests)."""
        if not (math.isfinite(timeout_seconds) and timeout_seconds > 0):
            raise ValueError(f"model check timeout must be > 0 seconds: {timeout_seconds!r}")
        self.tracking_uri = tracking_uri
        self.timeout_seconds = timeout_seconds
        self._worker = worker or WorkerProcess(
            "live.model_check", description="the model check process"
        )

    @property
    def worker_pid(self) -> int | None:
        return self._worker.pid

    def start(self) -> None:
        """Start the worker ahead of the first check (WorkerStartError if it cannot)."""
        self._worker.start()

    def check(self, name: str, version: str) -> ModelCheckResult:
        """Load `name` version `version` in the worker and predict one row with it.

        WorkerStartError (a WorkerError) when the worker itself cannot start: that says
        nothing about the model, so it is not a refusal.
        """
        started = time.perf_counter()
        request = (self.tracking_uri, name, str(version))
        try:
            answer = self._worker.call(request, self.timeout_seconds)
        except WorkerStartError:
            raise
        except WorkerTimeoutError:
            reason = (
                f"loading and predicting did not finish within {self.timeout_seconds:g} s: "
                "the model check process was killed"
            )
            return self._result(name, version, reason, started)
        except WorkerDiedError as error:
            return self._result(name, version, f"loading it crashed: {error}", started)
        status, detail = answer
        return self._result(name, version, None if status == "ok" else str(detail), started)

    def close(self) -> None:
        self._worker.close()

    @staticmethod
    def _result(name: str, version: str, reason: str | None, started: float) -> ModelCheckResult:
        return ModelCheckResult(
            name=name,
            version=str(version),
            ok=reason is None,
            reason=reason,
            seconds=time.perf_counter() - started,
        )


# -- the worker side -------------------------------------------------------------------------


def _check_in_worker(registries: dict[str, Any], request: tuple[str, str, str]) -> tuple[str, str]:
    import pandas as pd

    from tradepipe.features import default_spec
    from tradepipe.registry import ModelRegistry

    tracking_uri, name, version = request
    try:
        registry = registries.get(tracking_uri)
        if registry is None:
            registry = registries[tracking_uri] = ModelRegistry(tracking_uri)
        model = registry.load(name, version=version)
        columns = list(model.feature_names)
        if not columns:  # no signature: the features its spec produces
            columns = list((model.feature_spec() or default_spec()).feature_names)
        model.predict_proba(pd.DataFrame([[0.0] * len(columns)], columns=columns))
    except Exception as error:  # ModelLoadError, a registry error, a prediction that raises
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        return ("refused", text)
    return ("ok", "")


def _main() -> None:
    """The worker: mlflow and LightGBM are imported before it says it is ready."""
    import lightgbm  # noqa: F401 - the import cost belongs to the start, not a check
    import mlflow.pyfunc  # noqa: F401

    registries: dict[str, Any] = {}
    serve(lambda request: _check_in_worker(registries, request))


if __name__ == "__main__":
    _main()
