"""The research pipeline as four calls: train, validate, promote, and run (all three).

These are what `tradepipe research train|validate|promote|run --spec FILE [--data PATH]` and
the Airflow tasks call. Each takes a spec file and optional data (a file path or store key
replacing the spec's reference, or CandleData), returns a small frozen result that says
what happened, and raises only ResearchError (one line) for anything a user can fix.

validate and promote act on the version `train` registered for the same spec, data and
strategy (the train key, see `context`), or on an explicit `version` trained from them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from research.training.context import DataInput, StepContext, load_context
from research.training.errors import PipelineStateError, ResearchError
from research.training.promotion import PromotionOutcome, promote_step
from research.training.tracking import find_training_run, tracking_to
from research.training.train import TRAIN_KEY_TAG, TrainResult, train_step
from research.training.walkforward import WALK_FORWARD_TAG, ValidationResult, validate_step
from research.training.workspace import Workspace
from tradepipe.registry import ModelRegistry, ModelVersionInfo, RegistryError

__all__ = ["RunOutcome", "promote", "run", "train", "validate"]


@dataclass(frozen=True)
class RunOutcome:
    train: TrainResult
    validation: ValidationResult
    promotion: PromotionOutcome

    @property
    def model_name(self) -> str:
        return self.promotion.model_name

    @property
    def version(self) -> str:
        return self.promotion.version

    @property
    def promoted(self) -> bool:
        return self.promotion.promoted

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.promotion.reasons

    def summary(self) -> str:
        return self.promotion.summary()


def train(
    spec_path: str | Path,
    data: DataInput = None,
    *,
    workspace: Workspace | None = None,
    force: bool = False,
) -> TrainResult:
    """Train, log and register a version; an identical earlier run is reused unless `force`."""
    with _user_facing():
        return train_step(load_context(spec_path, data, workspace), force=force)


def validate(
    spec_path: str | Path,
    data: DataInput = None,
    *,
    workspace: Workspace | None = None,
    version: str | None = None,
) -> ValidationResult:
    """Walk-forward validation of the version trained from this spec and data."""
    with _user_facing():
        context = load_context(spec_path, data, workspace)
        return _validate(context, version)


def promote(
    spec_path: str | Path,
    data: DataInput = None,
    *,
    workspace: Workspace | None = None,
    version: str | None = None,
) -> PromotionOutcome:
    """Gate the validated version against the spec and the champion; promote or refuse."""
    with _user_facing():
        context = load_context(spec_path, data, workspace)
        return _promote(context, version)


def run(
    spec_path: str | Path, data: DataInput = None, *, workspace: Workspace | None = None
) -> RunOutcome:
    """train, validate and promote on data loaded once."""
    with _user_facing():
        context = load_context(spec_path, data, workspace)
        trained = train_step(context)
        validation = _validate(context, trained.version)
        return RunOutcome(trained, validation, _promote(context, trained.version))


def _validate(context: StepContext, version: str | None) -> ValidationResult:
    with tracking_to(context.workspace) as client:
        found, run_id = _trained_version(context, client, version)
        return validate_step(
            context, client, model_name=found.name, version=found.version, run_id=run_id
        )


def _promote(context: StepContext, version: str | None) -> PromotionOutcome:
    with tracking_to(context.workspace) as client:
        found, run_id = _trained_version(context, client, version)
        if not _validated(client, run_id):
            raise PipelineStateError(
                f"{found.name} version {found.version} has no walk-forward validation: run "
                f"`{context.command('validate')}` first"
            )
        validation = validate_step(  # reads the recorded folds
            context, client, model_name=found.name, version=found.version, run_id=run_id
        )
        return promote_step(
            context, client, version=found, run_id=run_id, walk_forward=validation.aggregate
        )


def _trained_version(
    context: StepContext, client: MlflowClient, version: str | None
) -> tuple[ModelVersionInfo, str]:
    """The version to act on and its run, checked to come from this spec and data."""
    spec = context.spec
    registry = ModelRegistry(context.workspace.tracking_uri)
    train_first = f"run `{context.command('train')}` first"
    if version is not None:
        found = registry.version(spec.registered_model, version)
        run_id = found.run_id or ""
        trained_from = client.get_run(run_id).data.tags.get(TRAIN_KEY_TAG) if run_id else None
        if trained_from != context.train_key:
            raise PipelineStateError(
                f"{spec.registered_model} version {version} was not trained from this spec, "
                f"data and strategy: pass the ones it was trained from, or {train_first}"
            )
        return found, run_id
    experiment = client.get_experiment_by_name(spec.experiment_name)
    earlier = (
        find_training_run(client, experiment.experiment_id, context.train_key)
        if experiment is not None
        else None
    )
    versions = (
        registry.versions_of_run(spec.registered_model, earlier.info.run_id)
        if earlier is not None
        else []
    )
    if earlier is None or not versions:
        raise PipelineStateError(
            f"no {spec.registered_model} version trained from {context.spec_path} on "
            f"{context.data.source} yet: {train_first}"
        )
    return versions[-1], earlier.info.run_id


def _validated(client: MlflowClient, run_id: str) -> bool:
    return client.get_run(run_id).data.tags.get(WALK_FORWARD_TAG) == "done"


@contextmanager
def _user_facing() -> Iterator[None]:
    """Registry and MLflow store failures are the user's to fix (a wrong URI, a deleted
    version): one line, not a traceback."""
    try:
        yield
    except RegistryError as error:
        raise ResearchError(str(error)) from error
    except MlflowException as error:
        raise ResearchError(f"MLflow: {_essence(str(error.message))}") from error


def _essence(message: str) -> str:
    """The informative line of an MLflow message: the driver's error when one is quoted
    (SQLAlchemy wraps it in lines of advice), else the first line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    quoted = [line for line in lines if re.match(r"^\(\w+(\.\w+)*Error\)", line)]
    return (quoted or lines or ["unknown error"])[0]
