"""Model commands: the registry's models and the operator's actions on their champion.

`list` and `show` read the MLflow registry (and, for `show`, the promotion decisions in the
trading database); `promote`, `rollback`, `pin` and `unpin` go through `tradepipe.model_ops`,
the one implementation the engine API and the dashboard use too, and each records who and
why. Running engines pick a moved champion up at their next registry poll
(`engine_model_poll_seconds`), without a restart.
"""

from __future__ import annotations

import getpass
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.common import console, database_session, settings, user_errors

if TYPE_CHECKING:
    from tradepipe.model_ops import ModelAction
    from tradepipe.registry import ModelRegistry

models_app = typer.Typer(
    help="Models: list, show, promote, roll back, pin and unpin a champion; live quality.",
    no_args_is_help=True,
)

Json = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
Reason = Annotated[str, typer.Option(help="why: recorded with the action (required)")]


def _registry() -> ModelRegistry:
    from tradepipe.registry import ModelRegistry

    return ModelRegistry.from_settings(settings())


def _errors() -> tuple[type[BaseException], ...]:
    from tradepipe.registry import RegistryError

    return (RegistryError,)


def operator_name() -> str:
    """Who acts from this shell, as recorded: `cli:<login>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in a bare container
        return "cli"


@models_app.command("list")
def models_list(as_json: Json = False) -> None:
    """Every registered model: champion, challenger, where a rollback goes, pin."""
    from dataclasses import asdict

    from tradepipe.model_ops import list_models

    with user_errors(_errors()):
        models = list_models(_registry())
    if as_json:
        print(json.dumps([asdict(model) for model in models], sort_keys=True))
        return
    if not models:
        console.print("no registered models yet: `tradepipe research run --spec ...` trains one")
        return
    table = Table("model", "champion", "challenger", "rollback to", "versions", "pinned")
    for model in models:
        pinned = "" if model.pin is None else f"v{model.pin.version} by {model.pin.by}"
        table.add_row(
            model.name, model.champion or "-", model.challenger or "-",
            model.previous_champion or "-", str(model.versions), escape(pinned),
        )  # fmt: skip
    console.print(table)


@models_app.command("show")
def models_show(name: str, as_json: Json = False) -> None:
    """One model: its versions with aliases and tags, and every promotion decision."""
    from tradepipe.model_ops import show_model

    with user_errors(_errors()), database_session() as session:
        detail = show_model(_registry(), name, session)
    if as_json:
        print(json.dumps(detail.to_dict(), sort_keys=True, default=str))
        return
    summary = detail.summary
    console.print(f"model {escape(name)}: champion {summary.champion or '-'}", highlight=False)
    if summary.pin is not None:
        pin = summary.pin
        console.print(
            escape(f"pinned at version {pin.version} by {pin.by} at {pin.at}: {pin.reason}")
        )
    versions = Table("version", "aliases", "promoted at", "demoted at", "rolled back", "run")
    for row in detail.versions:
        versions.add_row(
            row.version, ", ".join(row.aliases), row.promoted_at or "", row.demoted_at or "",
            "yes" if row.rolled_back else "", row.run_id or "",
        )  # fmt: skip
    console.print(versions)
    if detail.decisions:
        decisions = Table("decided at", "version", "decision", "by", "reason", title="decisions")
        for item in detail.decisions:
            operator: dict[str, Any] = item.reasons.get("operator") or {}
            why = operator.get("reason") or ", ".join(
                gate for gate, result in item.reasons.items() if not _passed(result)
            )
            decisions.add_row(
                item.decided_at.isoformat(timespec="seconds"), item.version, item.decision.value,
                operator.get("by", "lifecycle"), escape(str(why)),
            )  # fmt: skip
        console.print(decisions)


def _passed(result: object) -> bool:
    return not isinstance(result, dict) or bool(result.get("passed", True))


@models_app.command("promote")
def models_promote(name: str, version: str, reason: Reason, as_json: Json = False) -> None:
    """Make VERSION the champion now (refused while the model is pinned)."""
    from tradepipe.model_ops import promote

    _act(
        lambda registry, session: promote(registry, name, version, **_who(reason), session=session),
        as_json,
    )


@models_app.command("rollback")
def models_rollback(name: str, reason: Reason, as_json: Json = False) -> None:
    """Move the champion back to the one before it."""
    from tradepipe.model_ops import rollback

    _act(
        lambda registry, session: rollback(registry, name, **_who(reason), session=session), as_json
    )


@models_app.command("pin")
def models_pin(name: str, reason: Reason, as_json: Json = False) -> None:
    """Freeze the champion where it is: no promotion moves it until it is unpinned."""
    from tradepipe.model_ops import pin

    _act(lambda registry, session: pin(registry, name, **_who(reason), session=session), as_json)


@models_app.command("unpin")
def models_unpin(name: str, reason: Reason, as_json: Json = False) -> None:
    """Let promotions move the champion again."""
    from tradepipe.model_ops import unpin

    _act(lambda registry, session: unpin(registry, name, **_who(reason), session=session), as_json)


def _who(reason: str) -> dict[str, str]:
    return {"by": operator_name(), "reason": reason}


def _act(action: Any, as_json: bool) -> None:
    with user_errors(_errors()), database_session() as session:
        done: ModelAction = action(_registry(), session)
    if as_json:
        print(json.dumps(done.to_dict(), sort_keys=True))
        return
    moved = (
        f"champion {done.champion_before or '-'} -> {done.champion_after or '-'}"
        if done.champion_before != done.champion_after
        else f"champion {done.champion_after or '-'}"
    )
    console.print(escape(f"{done.action} {done.model}: {moved} (by {done.by}: {done.reason})"))


@models_app.command("quality")
def models_quality(
    name: str,
    version: Annotated[str | None, typer.Option(help="one version (default: every one)")] = None,
    since: Annotated[
        str | None, typer.Option(help="decisions on candles from this UTC time (ISO 8601) on")
    ] = None,
    bucket_minutes: Annotated[
        int, typer.Option(min=1, help="one point per this many minutes of candle time")
    ] = 60,
    as_json: Json = False,
) -> None:
    """Live quality of NAME per version, from the engine's recorded decisions and candles:
    outcomes that matured, AUC, precision and hit rate beside validation, and drift (PSI).
    Logged to MLflow (experiment tradepipe-live-quality, step = time)."""
    from tradepipe.marketdata.decisions import DecisionLogError
    from tradepipe.quality import QualityError
    from tradepipe.quality_report import evaluation_steps, quality_from_evidence

    current = settings()
    with user_errors((*_errors(), QualityError, DecisionLogError)):
        start_ms = _utc_ms(since) if since is not None else None
        registry = _registry()
        found = quality_from_evidence(
            current.resolved_decision_log_dir,
            current.resolved_market_data_dir,
            current.record_exchange,
            registry.quality_reference,
            model=name,
            version=version,
            start_ms=start_ms,
            bucket_ms=bucket_minutes * 60_000,
        )
        runs = {
            item.version: registry.log_evaluation(item.model, item.version, evaluation_steps(item))
            for item in found
        }
    if as_json:
        print(json.dumps([item.to_dict() | {"mlflow_run_id": runs[item.version]} for item in found],
                         sort_keys=True))  # fmt: skip
        return
    if not found:
        console.print(
            escape(f"no recorded decision of {name}" + (f" version {version}" if version else ""))
            + ": the engine records them with record_decisions on"
        )
        return
    table = Table("version", "decisions", "matured", "AUC live / val", "precision live / val",
                  "hit rate live / val", "max feature PSI", "prediction PSI")  # fmt: skip
    for item in found:
        live, val = item.quality.figures, item.reference.figures if item.reference else {}
        pair = [f"{_figure(live.get(key))} / {_figure(val.get(key))}"
                for key in ("auc", "precision_at_threshold", "hit_rate")]  # fmt: skip
        table.add_row(
            item.version, str(item.quality.decisions), str(item.quality.matured), *pair,
            _figure(item.quality.max_feature_psi), _figure(item.quality.prediction_psi),
        )  # fmt: skip
    console.print(table)


def _figure(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"  # NaN != NaN


def _utc_ms(text: str) -> int:
    from datetime import UTC, datetime

    from tradepipe.registry import RegistryError

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        message = f"--since {text!r}: use an ISO 8601 time, e.g. 2024-01-01T00:00"
        raise RegistryError(message) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
