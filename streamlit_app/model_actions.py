"""The Models page's operator actions: promote, roll back, pin or unpin a champion.

The same actions as `tradepipe models` and the engine API, through the one implementation
(tradepipe.model_ops), recorded with `dashboard` as who and the form's reason as why. The
page is only drawn for a session that passed the dashboard's access check (a password off
loopback), so the actions sit behind the same authentication as everything else. Running
engines swap at their next registry poll.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st
from sqlalchemy.orm import Session

from streamlit_app import context
from tradepipe import model_ops
from tradepipe.config import Settings
from tradepipe.db.session import session_scope
from tradepipe.registry import ModelRegistry, RegistryError

__all__ = ["ACTIONS", "WHO", "render"]

WHO = "dashboard"
ACTIONS = ("roll back", "pin", "unpin", "promote")
_FORM_KEY = "tradepipe_model_action"

Act = Callable[[ModelRegistry, Session], model_ops.ModelAction]


def render(current: Settings, model_names: Sequence[str], on_done: Callable[[], None]) -> None:
    """The form; `on_done` is called after an action (to forget cached registry reads)."""
    st.subheader("Operator actions")
    if not model_names:
        st.caption("No registered model to act on yet.")
        return
    with st.form(_FORM_KEY, clear_on_submit=False):
        columns = st.columns([2, 1, 1, 3])
        name = columns[0].selectbox("Model", list(model_names), key=f"{_FORM_KEY}_model")
        action = columns[1].selectbox("Action", ACTIONS, key=f"{_FORM_KEY}_action")
        version = columns[2].text_input(
            "Version (promote)", key=f"{_FORM_KEY}_version", placeholder="e.g. 7"
        )
        reason = columns[3].text_input(
            "Reason (required, recorded)", key=f"{_FORM_KEY}_reason", max_chars=500
        )
        submitted = st.form_submit_button("Apply", type="primary")
    st.caption(
        "Recorded with who (`dashboard`) and why in the registry's tags, the promotion history "
        "and the events; a pinned champion does not move until it is unpinned."
    )
    if not submitted or name is None:
        return
    act = _action(str(name), str(action), version.strip(), reason)
    if isinstance(act, str):
        st.error(act)
        return
    try:
        registry = ModelRegistry(current.resolved_mlflow_tracking_uri)
        with session_scope(context.engine(current)) as session:
            done = act(registry, session)
    except RegistryError as error:
        st.error(f"{action} {name}: {error}")
        return
    on_done()
    st.success(
        f"{done.action} {done.model}: champion {done.champion_before or '-'} → "
        f"{done.champion_after or '-'} ({done.reason})"
    )


def _action(name: str, action: str, version: str, reason: str) -> Act | str:
    """The chosen action, or why it cannot be taken as filled in."""
    if not reason.strip():
        return "Give a reason: it is recorded with the action."
    if action == "promote":
        if not version:
            return "Give the version to promote."
        return lambda registry, session: model_ops.promote(
            registry, name, version, by=WHO, reason=reason, session=session
        )
    chosen = {"roll back": model_ops.rollback, "pin": model_ops.pin, "unpin": model_ops.unpin}
    run = chosen[action]
    return lambda registry, session: run(registry, name, by=WHO, reason=reason, session=session)
