"""What an operator does to the model registry: list, show, promote, roll back, pin, unpin.

One implementation for every transport (the CLI, the engine API, the dashboard), so each
action is checked and recorded the same way: every action needs a reason and names who
took it; the registry carries it on the version (tags) and the trading database keeps the
decision (`model_promotions` for a champion that moved, with `reasons.operator`, and an
event for every action), so the Models page and `tradepipe models show` tell the story.

Rollback returns to the champion before the current one: the newest version tagged
`previous_champion` that was not itself rolled back at its last demotion (a rolled-back
version is tagged `rolled_back_at`, so a second rollback goes further back instead of
flipping between two).
Pinning freezes the champion where it is: while pinned, nothing moves the alias, neither
the lifecycle DAG's promotion nor an operator (`registry.ModelPinnedError`); unpin first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from tradepipe.db.models import Event, ModelPromotion
from tradepipe.db.queries import list_model_promotions
from tradepipe.db.views import PromotionView
from tradepipe.enums import PromotionDecision
from tradepipe.registry import (
    CHALLENGER,
    CHAMPION,
    DEMOTED_AT_TAG,
    PIN_TAGS,
    PREVIOUS_CHAMPION_TAG,
    PROMOTED_AT_TAG,
    ModelPinnedError,
    ModelRegistry,
    ModelVersionInfo,
    RegistryError,
)

__all__ = [
    "ModelAction",
    "ModelDetail",
    "ModelSummary",
    "OperatorError",
    "Pin",
    "VersionRow",
    "list_models",
    "pin",
    "pin_of",
    "promote",
    "rollback",
    "show_model",
    "unpin",
]

ROLLED_BACK_TAG = "rolled_back_at"
EVENT_KINDS = {
    "promote": "model_promoted",
    "rollback": "model_rolled_back",
    "pin": "model_pinned",
    "unpin": "model_unpinned",
}


class OperatorError(RegistryError):
    """An operator action that cannot be taken as asked (no reason, nothing to roll back to)."""


@dataclass(frozen=True)
class Pin:
    version: str
    by: str
    reason: str
    at: str


@dataclass(frozen=True)
class ModelSummary:
    name: str
    champion: str | None
    challenger: str | None
    previous_champion: str | None  # where a rollback would go
    versions: int
    pin: Pin | None


@dataclass(frozen=True)
class VersionRow:
    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    promoted_at: str | None
    demoted_at: str | None
    rolled_back: bool
    tags: dict[str, str]


@dataclass(frozen=True)
class ModelDetail:
    summary: ModelSummary
    versions: tuple[VersionRow, ...]
    decisions: tuple[PromotionView, ...] = field(default=())  # newest first

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["decisions"] = [
            {**asdict(item), "decided_at": item.decided_at.isoformat()} for item in self.decisions
        ]
        return data


@dataclass(frozen=True)
class ModelAction:
    action: str  # promote, rollback, pin, unpin
    model: str
    champion_before: str | None
    champion_after: str | None
    by: str
    reason: str
    at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_models(registry: ModelRegistry) -> list[ModelSummary]:
    return [_summary(registry, name, registry.versions(name)) for name in registry.model_names()]


def show_model(registry: ModelRegistry, name: str, session: Session | None = None) -> ModelDetail:
    versions = registry.versions(name)
    rows = tuple(
        VersionRow(
            version=item.version,
            aliases=item.aliases,
            run_id=item.run_id,
            promoted_at=item.tags.get(PROMOTED_AT_TAG),
            demoted_at=item.tags.get(DEMOTED_AT_TAG),
            rolled_back=ROLLED_BACK_TAG in item.tags,
            tags=dict(item.tags),
        )
        for item in reversed(versions)
    )
    decisions = () if session is None else list_model_promotions(session, model_name=name)
    return ModelDetail(_summary(registry, name, versions), rows, decisions)


def promote(
    registry: ModelRegistry, name: str, version: str, *, by: str, reason: str, session: Session
) -> ModelAction:
    """Make `version` the champion (ModelPinnedError while pinned, ModelNotFoundError for
    an unknown model or version)."""
    reason = _required(reason)
    before = _champion_version(registry, name)
    registry.set_champion(name, str(version))
    registry.tag_version(name, str(version), {"promoted_by": by, "promotion_reason": reason})
    return _record(session, "promote", name, before, str(version), by, reason)


def rollback(
    registry: ModelRegistry, name: str, *, by: str, reason: str, session: Session
) -> ModelAction:
    """Move the champion back to the one before it; OperatorError when there is none."""
    reason = _required(reason)
    versions = registry.versions(name)
    before = _champion_version(registry, name)
    target = _rollback_target(versions, before)
    if target is None:
        raise OperatorError(
            f"{name} has no earlier champion to roll back to"
            + ("" if before is None else f" (version {before} is the first)")
            + ": promote a version by number, or stop its bots"
        )
    registry.set_champion(name, target.version)
    if before is not None:
        registry.tag_version(
            name,
            before,
            {ROLLED_BACK_TAG: _now(), "rolled_back_by": by, "rollback_reason": reason},
        )
    return _record(session, "rollback", name, before, target.version, by, reason)


def pin(
    registry: ModelRegistry, name: str, *, by: str, reason: str, session: Session
) -> ModelAction:
    """Freeze the champion where it is."""
    reason = _required(reason)
    current = _champion_version(registry, name)
    if current is None:
        raise OperatorError(f"{name} has no champion to pin: promote a version first")
    pinned = pin_of(registry.model_tags(name))
    if pinned is not None:
        raise ModelPinnedError(
            f"{name} is pinned already at version {pinned.version} ({pinned.reason})"
        )
    stamp = _now()
    registry.set_model_tags(name, dict(zip(PIN_TAGS, (current, by, reason, stamp), strict=True)))
    return _record(session, "pin", name, current, current, by, reason, at=stamp)


def unpin(
    registry: ModelRegistry, name: str, *, by: str, reason: str, session: Session
) -> ModelAction:
    reason = _required(reason)
    if pin_of(registry.model_tags(name)) is None:
        raise OperatorError(f"{name} is not pinned")
    registry.set_model_tags(name, dict.fromkeys(PIN_TAGS))
    current = _champion_version(registry, name)
    return _record(session, "unpin", name, current, current, by, reason)


# --- helpers --------------------------------------------------------------------------------


def _summary(registry: ModelRegistry, name: str, versions: list[ModelVersionInfo]) -> ModelSummary:
    by_alias = {alias: item.version for item in versions for alias in item.aliases}
    champion = by_alias.get(CHAMPION)
    target = _rollback_target(versions, champion)
    return ModelSummary(
        name=name,
        champion=champion,
        challenger=by_alias.get(CHALLENGER),
        previous_champion=None if target is None else target.version,
        versions=len(versions),
        pin=pin_of(registry.model_tags(name)),
    )


def _rollback_target(
    versions: list[ModelVersionInfo], champion: str | None
) -> ModelVersionInfo | None:
    earlier = [
        item
        for item in versions
        if item.version != champion
        and item.tags.get(PREVIOUS_CHAMPION_TAG) == "true"
        and not _rolled_back_since_demoted(item)
    ]
    return max(earlier, key=lambda item: item.tags.get(DEMOTED_AT_TAG, ""), default=None)


def _rolled_back_since_demoted(item: ModelVersionInfo) -> bool:
    """Rolled back at its last demotion (a version promoted again and then demoted in the
    ordinary way is a rollback target again)."""
    rolled_back_at = item.tags.get(ROLLED_BACK_TAG)
    return rolled_back_at is not None and rolled_back_at >= item.tags.get(DEMOTED_AT_TAG, "")


def pin_of(tags: Mapping[str, str]) -> Pin | None:
    """The pin recorded in a registered model's tags, or None when it is not pinned."""
    version, by, reason, at = (tags.get(key) for key in PIN_TAGS)
    return None if version is None else Pin(version, by or "", reason or "", at or "")


def _champion_version(registry: ModelRegistry, name: str) -> str | None:
    registry.model_tags(name)  # ModelNotFoundError for an unknown model
    found = registry.champion(name)
    return None if found is None else found.version


def _required(reason: str) -> str:
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise OperatorError("say why: every model action records its reason (--reason TEXT)")
    return cleaned[:500]


def _now() -> str:
    # Full precision, as the registry's own demoted_at: the two are compared as text.
    return datetime.now(UTC).isoformat()


def _record(
    session: Session,
    action: str,
    name: str,
    before: str | None,
    after: str | None,
    by: str,
    reason: str,
    *,
    at: str | None = None,
) -> ModelAction:
    done = ModelAction(action, name, before, after, by, reason, at or _now())
    decided_at = datetime.fromisoformat(done.at)
    if action in {"promote", "rollback"} and after is not None and after != before:
        session.add(
            ModelPromotion(
                model_name=name,
                version=after,
                alias=CHAMPION,
                decision=PromotionDecision.PROMOTED,
                reasons={"operator": done.to_dict()},
                metrics={},
                decided_at=decided_at,
            )
        )
    session.add(Event(kind=EVENT_KINDS[action], payload=done.to_dict(), created_at=decided_at))
    return done
