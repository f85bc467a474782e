"""The model registry: the one kernel module that talks to MLflow's model registry.

Research registers versions and promotes them; the live engine loads `champion` and swaps it
when the alias moves. Both go through here, so the alias names, the tags a version carries
and the way a version becomes a probability function are defined once.

Promotion uses registry aliases (`models:/name@champion`), never MLflow's deprecated stages:
- `champion`: the version bots trade; moved only by `set_champion`, which tags the version it
  replaces (`previous_champion=true`, `demoted_at`, `demoted_by`) so history stays readable
  in the registry itself, not only in the trading database.
- `challenger`: the newest registered candidate, until it is promoted.

Every call uses an explicit MlflowClient for one tracking/registry URI (never the process-
wide `mlflow.set_tracking_uri`), so several registries can live in one process, and a
version is always loaded by number after resolving the alias once: a promotion racing the
load cannot hand back a model other than the version reported. mlflow is imported lazily:
importing it costs seconds, and processes that never touch the registry should not pay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tradepipe.config import Settings, load_settings
from tradepipe.model_version import (
    FEATURE_SPEC_HASH_TAG,
    FEATURE_SPEC_TAG,
    LoadedModel,
    ModelLoadError,
    ModelNotFoundError,
    ModelPinnedError,
    ModelVersionInfo,
    RegisteredModel,
    RegistryError,
    RunRecord,
    parse_model_uri,
)
from tradepipe.quality import QualityError, QualityReference

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "FEATURE_SPEC_HASH_TAG",
    "FEATURE_SPEC_TAG",
    "PIN_TAGS",
    "PREVIOUS_CHAMPION_TAG",
    "QUALITY_REFERENCE_ARTIFACT",
    "SHADOW_STARTED_TAG",
    "LoadedModel",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelPinnedError",
    "ModelRegistry",
    "ModelVersionInfo",
    "RegisteredModel",
    "RegistryError",
    "RunRecord",
    "get_champion",
    "load_model",
    "set_champion",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION_TAG = "previous_champion"
DEMOTED_AT_TAG = "demoted_at"
DEMOTED_BY_TAG = "demoted_by"
PROMOTED_AT_TAG = "promoted_at"
# Set on a version the promotion made `challenger` in shadow mode: the live engine shadows
# a challenger only with this tag (a version merely registered as challenger is not vetted).
SHADOW_STARTED_TAG = "shadow_started_at"
LOGGED_MODEL_TAG = "logged_model_id"
# The training run's artifact with the validation figures and training distributions that
# live quality is compared with (tradepipe.quality.QualityReference).
QUALITY_REFERENCE_ARTIFACT = "quality_reference.json"
# Evaluation runs of a version's live quality: one run per (model, version), found by tags.
EVALUATION_EXPERIMENT = "tradepipe-live-quality"
EVALUATION_TAGS = ("tradepipe.evaluation", "tradepipe.model", "tradepipe.model_version")
# Registered-model tags of a pinned champion: while `pinned_version` is set nothing moves
# the alias, neither a promotion run nor an operator (unpin first).
PIN_TAGS = ("pinned_version", "pinned_by", "pinned_reason", "pinned_at")


class ModelRegistry:
    """Registered models in one MLflow registry (SQLite by default, see Settings)."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        # Explicit, both: left None, MlflowClient falls back to the process-wide URI.
        self._client = MlflowClient(
            tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ModelRegistry:
        """The registry of the configured MLflow store (TRADEPIPE_MLFLOW_TRACKING_URI)."""
        current = settings or load_settings()
        return cls(current.resolved_mlflow_tracking_uri)

    # --- reading --------------------------------------------------------------------------

    def version(self, name: str, version: str) -> ModelVersionInfo:
        return self._info(self._call(self._client.get_model_version, name, str(version)))

    def alias(self, name: str, alias: str) -> ModelVersionInfo | None:
        """The version `alias` points to, or None when the alias (or model) is unset."""
        from mlflow.exceptions import MlflowException

        try:
            found = self._client.get_model_version_by_alias(name, alias)
        except MlflowException as error:
            # An unset alias is INVALID_PARAMETER_VALUE, an unknown model RESOURCE_DOES_NOT_
            # EXIST; anything else (an unreachable store) must not read as "no champion".
            if error.error_code in {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"}:
                return None
            raise RegistryError(str(error).splitlines()[0]) from error
        return self._info(found)

    def champion(self, name: str) -> ModelVersionInfo | None:
        return self.alias(name, CHAMPION)

    def model_names(self) -> list[str]:
        """Every registered model, by name."""
        found = self._call(self._client.search_registered_models)
        return sorted(str(model.name) for model in found)

    def registered_models(self, *, at_most: int = 200) -> list[RegisteredModel]:
        """Registered models (up to `at_most`) with their aliases, by name."""
        found = self._call(self._client.search_registered_models, None, at_most)
        return sorted(
            (
                RegisteredModel(
                    name=str(model.name),
                    description=model.description or None,
                    aliases={str(a): str(v) for a, v in (model.aliases or {}).items()},
                )
                for model in found
            ),
            key=lambda model: model.name,
        )

    def versions(self, name: str) -> list[ModelVersionInfo]:
        """Every version of `name`, oldest first; ModelNotFoundError for an unknown model."""
        aliases: dict[str, list[str]] = {}
        for alias, version in self._call(self._client.get_registered_model, name).aliases.items():
            aliases.setdefault(str(version), []).append(str(alias))
        found = self._call(self._client.search_model_versions, f"name = {_literal(name)}")
        # A search leaves versions' aliases empty (MLflow 3): they come from the model.
        return sorted(
            (
                replace(self._info(item), aliases=tuple(sorted(aliases.get(str(item.version), []))))
                for item in found
            ),
            key=lambda item: int(item.version),
        )

    def model_tags(self, name: str) -> dict[str, str]:
        """The registered model's own tags (not a version's)."""
        return dict(self._call(self._client.get_registered_model, name).tags or {})

    def versions_of_run(self, name: str, run_id: str) -> list[ModelVersionInfo]:
        """Versions of `name` registered from `run_id`, oldest first."""
        found = self._client.search_model_versions(
            f"name = {_literal(name)} and run_id = '{run_id}'"
        )
        return sorted((self._info(item) for item in found), key=lambda item: int(item.version))

    def run_record(self, run_id: str) -> RunRecord:
        """What the run `run_id` (a version's training run) logged."""
        try:
            data = self._call(self._client.get_run, run_id).data
        except ModelNotFoundError:  # _call words it as a model's absence
            raise ModelNotFoundError(f"no run {run_id} in this tracking store") from None
        return RunRecord(
            metrics={str(key): float(value) for key, value in data.metrics.items()},
            tags={str(key): str(value) for key, value in data.tags.items()},
            params={str(key): str(value) for key, value in data.params.items()},
        )

    def quality_reference(self, name: str, version: str) -> QualityReference | None:
        """What training measured for `version` (None: trained before references were
        stored, or not by the research pipeline); RegistryError if it cannot be read."""
        import tempfile

        from mlflow.exceptions import MlflowException

        found = self.version(name, version)
        if found.run_id is None:
            return None
        with tempfile.TemporaryDirectory() as folder:
            try:
                path = self._client.download_artifacts(
                    found.run_id, QUALITY_REFERENCE_ARTIFACT, folder
                )
            except (MlflowException, OSError):
                if QUALITY_REFERENCE_ARTIFACT in self._artifact_names(found.run_id):
                    raise RegistryError(
                        f"{name} version {version}: {QUALITY_REFERENCE_ARTIFACT} unreadable"
                    ) from None
                return None
            text = Path(path).read_text(encoding="utf-8")
        try:
            return QualityReference.from_json(text)
        except QualityError as error:
            raise RegistryError(f"{name} version {version}: {error}") from None

    def _artifact_names(self, run_id: str) -> set[str]:
        from mlflow.exceptions import MlflowException

        try:
            return {str(item.path) for item in self._client.list_artifacts(run_id)}
        except (MlflowException, OSError):
            return set()

    # --- writing --------------------------------------------------------------------------

    def log_evaluation(
        self,
        name: str,
        version: str,
        steps: Mapping[int, Mapping[str, float]],
        *,
        params: Mapping[str, str] | None = None,
    ) -> str:
        """Log metrics per step (the caller's time axis, e.g. seconds since the epoch of a
        window's end) to the evaluation run of (`name`, `version`), created on first use in
        the EVALUATION_EXPERIMENT; returns its run id. A step already logged for a metric is
        not logged again, so re-running over the same window changes nothing. NaN figures
        (nothing to measure yet) are left out."""
        import math

        from mlflow.entities import Metric

        run_id = self._evaluation_run(name, str(version))
        logged: dict[str, set[int]] = {}
        batch = []
        stamp = int(datetime.now(UTC).timestamp() * 1000)
        for step, metrics in sorted(steps.items()):
            for key, value in metrics.items():
                if math.isnan(value) or math.isinf(value):
                    continue
                if key not in logged:
                    history = self._client.get_metric_history(run_id, key)
                    logged[key] = {int(item.step) for item in history}
                if int(step) in logged[key]:
                    continue
                logged[key].add(int(step))
                batch.append(Metric(key, float(value), stamp, int(step)))
        for start in range(0, len(batch), 1000):  # MLflow's limit per batch
            self._client.log_batch(run_id, metrics=batch[start : start + 1000])
        for key, text in (params or {}).items():
            self._client.set_tag(run_id, f"tradepipe.{key}", text)
        return run_id

    def _evaluation_run(self, name: str, version: str) -> str:
        experiment = self._client.get_experiment_by_name(EVALUATION_EXPERIMENT)
        experiment_id = (
            self._client.create_experiment(EVALUATION_EXPERIMENT)
            if experiment is None
            else experiment.experiment_id
        )
        kind, model_tag, version_tag = EVALUATION_TAGS
        runs = self._client.search_runs(
            [experiment_id],
            filter_string=(
                f"tags.`{kind}` = 'live_quality' and tags.`{model_tag}` = '{name}' "
                f"and tags.`{version_tag}` = '{version}'"
            ),
            max_results=1,
        )
        if runs:
            return str(runs[0].info.run_id)
        run = self._client.create_run(
            experiment_id,
            tags={kind: "live_quality", model_tag: name, version_tag: version},
            run_name=f"{name} v{version} live quality",
        )
        return str(run.info.run_id)

    def register(
        self,
        name: str,
        model_uri: str,
        *,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        aliases: tuple[str, ...] = (CHALLENGER,),
    ) -> ModelVersionInfo:
        """A new version of `name` (created if new) from a logged model's `models:/<id>`
        URI (or any artifact URI), tagged and given `aliases` (by default: challenger).

        A logged model is registered by its artifact location: MLflow 3's SQL registry
        would otherwise look the id up through the process-wide tracking URI, not this
        registry's (a TODO in its own code), and find nothing in another store.
        """
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError(str(error).splitlines()[0]) from error
            self._client.create_registered_model(name)
        source, version_tags = model_uri, dict(tags or {})
        model_id = _logged_model_id(model_uri)
        if model_id is not None:
            logged = self._call(self._client.get_logged_model, model_id)
            source = str(logged.artifact_location)
            run_id = run_id or logged.source_run_id
            version_tags[LOGGED_MODEL_TAG] = model_id
        created = self._client.create_model_version(
            name, source=source, run_id=run_id, tags=version_tags
        )
        for alias in aliases:
            self._client.set_registered_model_alias(name, alias, created.version)
        return self.version(name, created.version)

    def tag_version(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self._client.set_model_version_tag(name, str(version), key, value)

    def set_model_tags(self, name: str, tags: Mapping[str, str | None]) -> None:
        """Set the registered model's tags; a None value deletes the tag."""
        for key, value in tags.items():
            if value is None:
                self._call(self._client.delete_registered_model_tag, name, key)
            else:
                self._call(self._client.set_registered_model_tag, name, key, value)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call(self._client.set_registered_model_alias, name, alias, str(version))

    def set_champion(
        self,
        name: str,
        version: str,
        *,
        previous_tag: str = PREVIOUS_CHAMPION_TAG,
        at: datetime | None = None,
    ) -> str | None:
        """Point `champion` at `version`; return the version it pointed to before.

        Idempotent: when `version` already is champion nothing changes. The replaced
        champion keeps `previous_tag=true`, `demoted_at` and `demoted_by`; a challenger
        alias on `version` is removed (it is no longer a candidate). ModelPinnedError while
        the model is pinned (see PIN_TAGS).
        """
        version = str(version)
        self.version(name, version)  # refuse a version that does not exist, before any change
        pinned = self.model_tags(name).get(PIN_TAGS[0])
        current = self.champion(name)
        if pinned is not None and (current is None or current.version != version):
            raise ModelPinnedError(
                f"{name} is pinned at version {pinned}: its champion does not move until "
                f"it is unpinned (tradepipe models unpin {name} --reason ...)"
            )
        if current is not None and current.version == version:
            return None
        stamp = (at or datetime.now(UTC)).isoformat()
        if current is not None:
            self.tag_version(
                name,
                current.version,
                {previous_tag: "true", DEMOTED_AT_TAG: stamp, DEMOTED_BY_TAG: version},
            )
        self._client.set_registered_model_alias(name, CHAMPION, version)
        self.tag_version(name, version, {PROMOTED_AT_TAG: stamp})
        challenger = self.alias(name, CHALLENGER)
        if challenger is not None and challenger.version == version:
            self._client.delete_registered_model_alias(name, CHALLENGER)
        return current.version if current is not None else None

    def start_shadow(self, name: str, version: str, *, at: datetime | None = None) -> None:
        """Make `version` the challenger the live engine shadows (SHADOW_STARTED_TAG)."""
        version = str(version)
        self.version(name, version)
        stamp = (at or datetime.now(UTC)).isoformat()
        self.tag_version(name, version, {SHADOW_STARTED_TAG: stamp})
        self._call(self._client.set_registered_model_alias, name, CHALLENGER, version)

    def remove_challenger(self, name: str) -> None:
        """No challenger any more (refused by the shadow gate): the engine stops shadowing."""
        if self.alias(name, CHALLENGER) is not None:
            self._call(self._client.delete_registered_model_alias, name, CHALLENGER)

    # --- loading --------------------------------------------------------------------------

    def load(self, name: str, alias: str = CHAMPION, *, version: str | None = None) -> LoadedModel:
        """Load `version`, or the version `alias` points to, as a probability model."""
        if version is None:
            found = self.alias(name, alias)
            if found is None:
                raise ModelNotFoundError(f"model {name!r} has no version with alias {alias!r}")
        else:
            found = self.version(name, version)
        import mlflow.pyfunc

        try:
            pyfunc = mlflow.pyfunc.load_model(self._artifact_location(found))
        except Exception as error:  # an unloadable artifact must not take the caller down
            raise ModelLoadError(
                f"{name} version {found.version}: cannot load ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else 'no detail'})"
            ) from error
        schema = pyfunc.metadata.get_input_schema()
        names = tuple(schema.input_names()) if schema is not None else ()
        return LoadedModel(
            name=name,
            version=found.version,
            run_id=found.run_id,
            feature_names=names,
            tags=found.tags,
            _pyfunc=pyfunc,
        )

    def load_uri(self, uri: str) -> LoadedModel:
        """Load `models:/name@alias` or `models:/name/version`."""
        name, alias, version = parse_model_uri(uri)
        return self.load(name, alias or CHAMPION, version=version)

    def _artifact_location(self, found: ModelVersionInfo) -> str:
        """Where the version's files are, without the process-wide registry URI that a
        `models:/` source would need."""
        model_id = _logged_model_id(found.source)
        if model_id is not None:
            return str(self._client.get_logged_model(model_id).artifact_location)
        return found.source

    # --- helpers --------------------------------------------------------------------------

    def _call(self, method: Any, *args: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return method(*args)
        except MlflowException as error:
            if getattr(error, "error_code", "") in {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}:
                where = " version ".join(str(arg) for arg in args[:2])
                raise ModelNotFoundError(f"no registered model {where}") from None
            raise RegistryError(str(error).splitlines()[0]) from error

    @staticmethod
    def _info(version: Any) -> ModelVersionInfo:
        created = version.creation_timestamp  # milliseconds since the epoch
        logged_metrics = getattr(version, "metrics", None) or ()  # MLflow 3 logged model's
        return ModelVersionInfo(
            name=str(version.name),
            version=str(version.version),
            run_id=version.run_id or None,
            source=str(version.source),
            aliases=tuple(version.aliases or ()),
            tags=dict(version.tags or {}),
            status=str(version.status or ""),
            created_at=datetime.fromtimestamp(created / 1000, UTC) if created else None,
            metrics={str(metric.key): float(metric.value) for metric in logged_metrics},
        )


def _literal(name: str) -> str:
    """`name` as a string in a registry search filter (which has no escape for a quote)."""
    quote = '"' if "'" in name else "'"
    return f"{quote}{name}{quote}"


def _logged_model_id(uri: str) -> str | None:
    """The id in a logged model's URI `models:/<id>` (not `models:/<name>/<version>`)."""
    rest = uri.removeprefix("models:/")
    return rest if rest != uri and rest and "/" not in rest and "@" not in rest else None


def get_champion(name: str, *, registry: ModelRegistry | None = None) -> ModelVersionInfo | None:
    """The champion version of `name`, or None (registry from Settings by default)."""
    return (registry or ModelRegistry.from_settings()).champion(name)


def set_champion(
    name: str,
    version: str,
    *,
    previous_tag: str = PREVIOUS_CHAMPION_TAG,
    registry: ModelRegistry | None = None,
) -> str | None:
    """See `ModelRegistry.set_champion`."""
    chosen = registry or ModelRegistry.from_settings()
    return chosen.set_champion(name, version, previous_tag=previous_tag)


def load_model(
    name: str, alias: str = CHAMPION, *, registry: ModelRegistry | None = None
) -> LoadedModel:
    """`name@alias` as a LoadedModel with `predict_proba` (registry from Settings)."""
    return (registry or ModelRegistry.from_settings()).load(name, alias)
