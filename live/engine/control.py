"""The kill switch: one word that stops every new entry and cancels every pending one.

It lives in the database (`engine_controls`, name `kill_switch`), so it survives restarts
and reaches every engine that polls the table; the engine that flips it applies it at
once. Open (filled) positions are left to their take-profit, stop-loss and timeout, unless
the operator asks to flatten: then every open position is left at market as well (its
resting exits cancelled by the exit), in every engine.
While this engine's own change is not yet written, the poll ignores the table, so a stale
read can never undo a switch just flipped.
"""

from __future__ import annotations

from datetime import UTC, datetime

from live.engine.core import TradingCore
from live.engine.persistence import ControlWrite
from live.engine.status import KillSwitchState
from tradepipe.db import KILL_SWITCH

__all__ = ["KillSwitch"]


class KillSwitch:
    def __init__(self, core: TradingCore, engine_id: str) -> None:
        self.core = core
        self.engine_id = engine_id
        self._write_seq = 0

    @property
    def state(self) -> KillSwitchState:
        return self.core.kill_switch

    def engage(self, reason: str, *, flatten: bool = False) -> int:
        """Block every new entry and cancel every pending one (with `flatten`, leave every
        active position at market too); returns how many positions were closed."""
        now = datetime.now(UTC)
        value = {"engaged": True, "reason": reason, "at": now.isoformat(), "flatten": flatten}
        self._write_seq = self.core.recorder.submit(
            ControlWrite(KILL_SWITCH, value, self.engine_id)
        )
        return self._engaged(KillSwitchState(True, reason, now, flatten))

    def release(self) -> None:
        write = ControlWrite(KILL_SWITCH, {"engaged": False}, self.engine_id)
        self._write_seq = self.core.recorder.submit(write)
        self._released()

    def follow(self, wanted: KillSwitchState, *, read_after_seq: int) -> None:
        """Apply what the table says (another engine, the CLI, a restart). `read_after_seq`:
        the recorder's durable sequence when that read began; a read that began before our
        own change was written may predate it, even if it is written by now."""
        if read_after_seq < self._write_seq:
            return  # the table as read is behind us
        newly_flat = wanted.flatten and not self.state.flatten
        if wanted.engaged and (not self.state.engaged or newly_flat):
            self._engaged(wanted)
        elif not wanted.engaged and self.state.engaged:
            self._released()

    def _engaged(self, state: KillSwitchState) -> int:
        return self.core.engage_kill_switch(state)

    def _released(self) -> None:
        self.core.release_kill_switch()
