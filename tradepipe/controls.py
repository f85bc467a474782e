"""Operator switches that every engine follows from the trading database: the kill switch.

The one implementation behind `tradepipe live kill-switch` and the dashboard's controls
(an engine's own API engages it directly, live/engine/control.py, and writes the same row).
Every engine reads `engine_controls` at each poll (`engine_bot_reload_seconds`) and applies a
change: engaged, no new entry anywhere and every pending entry cancelled; released, entries
again. Open positions keep their take-profit, stop-loss and timeout, unless the switch is
engaged to flatten: then every open position is left at market too. Each action is an event
with who and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from tradepipe.db.engine_state import KILL_SWITCH, EngineControl
from tradepipe.db.models import Event

__all__ = ["KillSwitchSetting", "kill_switch", "set_kill_switch"]


@dataclass(frozen=True)
class KillSwitchSetting:
    engaged: bool
    reason: str | None
    by: str | None
    at: datetime | None
    flatten: bool = False


def kill_switch(session: Session) -> KillSwitchSetting:
    row = session.get(EngineControl, KILL_SWITCH)
    if row is None:
        return KillSwitchSetting(False, None, None, None)
    value: dict[str, Any] = row.value or {}
    engaged = bool(value.get("engaged"))
    return KillSwitchSetting(
        engaged,
        value.get("reason"),
        row.updated_by,
        row.updated_at,
        engaged and bool(value.get("flatten")),
    )


def set_kill_switch(
    session: Session, *, engaged: bool, reason: str, by: str, flatten: bool = False
) -> KillSwitchSetting:
    """Engage or release for every engine on this database; `reason` is required. With
    `flatten` every open position is left at market as well."""
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise ValueError("give a reason: it is recorded with the switch")
    now = datetime.now(UTC)
    value: dict[str, Any] = {"engaged": engaged, "at": now.isoformat()}
    if engaged:
        value["reason"], value["flatten"] = cleaned, flatten
    row = session.get(EngineControl, KILL_SWITCH)
    if row is None:
        session.add(EngineControl(name=KILL_SWITCH, value=value, updated_by=by, updated_at=now))
    else:
        row.value, row.updated_by, row.updated_at = value, by, now
    kind = "kill_switch_engaged" if engaged else "kill_switch_released"
    session.add(
        Event(
            kind=kind, payload={"by": by, "reason": cleaned, "source": "operator"}, created_at=now
        )
    )
    session.flush()
    return KillSwitchSetting(engaged, cleaned if engaged else None, by, now, engaged and flatten)
