"""Models: registered models and their versions with metrics, which version is champion,
the promotion history with every gate's result and the refusal reasons, each version's
lineage (data fingerprint, feature spec hash, strategy hash), and the operator's actions on
a champion (streamlit_app/model_actions.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from streamlit_app import context, display, model_actions, model_registry
from streamlit_app.model_registry import RegisteredModelInfo, RegistryRead
from tradepipe.config import Settings
from tradepipe.db.queries import list_model_promotions
from tradepipe.db.views import PromotionView
from tradepipe.enums import PromotionDecision

REGISTRY_TTL_SECONDS = 30  # MLflow is asked at most this often per store


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading the MLflow model registry…")
def _registry(tracking_uri: str) -> RegistryRead:
    return model_registry.read(tracking_uri)


def render() -> None:
    current = context.settings()
    st.title("Models")

    @st.fragment(run_every=context.refresh_every())
    def live() -> None:
        with context.read_errors_shown():
            _body(current)

    live()
    # Outside the refreshing fragment: a refresh must not redraw the form being filled in.
    registry = _registry(current.resolved_mlflow_tracking_uri)
    model_actions.render(current, [model.name for model in registry.models], _registry.clear)


def _body(current: Settings) -> None:
    registry = _registry(current.resolved_mlflow_tracking_uri)
    if registry.problem:
        st.warning(
            f"MLflow registry: {registry.problem}. The promotion history below comes from the "
            "trading database."
        )
    promotions = context.read(current, list_model_promotions, limit=500)
    registered = {model.name: model for model in registry.models}
    names = sorted(set(registered) | {p.model_name for p in promotions})
    if not names:
        st.info(
            "No models yet: models appear once training registers them in MLflow, and their "
            "promotion decisions once the gates have run."
        )
        return
    for name in names:
        _model(name, registered.get(name), [p for p in promotions if p.model_name == name])


def _model(
    name: str, model: RegisteredModelInfo | None, promotions: Sequence[PromotionView]
) -> None:
    st.subheader(name)
    champion = model.champion if model else None
    last_promoted = next((p for p in promotions if p.decision is PromotionDecision.PROMOTED), None)
    facts = []
    if champion is not None:
        facts.append(f":material/emoji_events: champion: **version {champion}**")
    elif model is not None:
        facts.append("no version holds the `champion` alias")
    if last_promoted is not None:
        facts.append(
            f"last promoted: version {last_promoted.version} to `{last_promoted.alias}` on "
            f"{display.when(last_promoted.decided_at)}"
        )
    if model is not None and model.description:
        facts.append(model.description)
    if facts:
        st.markdown(" · ".join(facts))
    st.markdown("**Versions** (MLflow registry, newest first)")
    if model is None or not model.versions:
        st.info("No versions in the MLflow registry for this model.")
    else:
        st.dataframe(_versions_frame(model), hide_index=True)
    st.markdown("**Promotion history** (one row per gate, newest decision first)")
    if promotions:
        st.dataframe(
            display.status_styles(_gates_frame(promotions), ["decision", "result"]),
            hide_index=True,
            column_config=display.narrow("detail", "metrics"),
        )
        for refused in (p for p in promotions if p.decision is PromotionDecision.REFUSED):
            reasons = _failed_gates(refused.reasons) or "no failed gate recorded"
            st.caption(f":material/block: version {refused.version} refused: {reasons}")
    else:
        st.info("No promotion decisions recorded for this model yet.")
    st.markdown("**Lineage**")
    frame = _lineage_frame(model, promotions)
    if frame.empty:
        st.info("No lineage recorded for this model yet.")
    else:
        st.dataframe(
            frame,
            hide_index=True,
            column_config=display.narrow("run", "feature spec hash", "strategy hash"),
        )
    st.divider()


def _versions_frame(model: RegisteredModelInfo) -> pd.DataFrame:
    metric_names = sorted(
        {key for version in model.versions for key in version.metrics}, key=_metric_order
    )
    rows = []
    for version in model.versions:
        row: dict[str, Any] = {
            "version": version.version,
            "aliases": ", ".join(version.aliases),
            "status": version.status,
            "created": display.when(version.created_at),
            "run": version.run_id or "",
        }
        row.update({metric: version.metrics.get(metric) for metric in metric_names})
        rows.append(row)
    return pd.DataFrame(rows)


def _metric_order(name: str) -> tuple[int, str]:
    """Validation scores first, then the validation backtest's, then the rest (training,
    data), each alphabetically: the columns a reviewer compares versions by come first."""
    if name.startswith("val/bt/"):
        return 1, name
    return (0 if name.startswith("val/") else 2), name


def _gates_frame(promotions: Sequence[PromotionView]) -> pd.DataFrame:
    rows = []
    for promotion in promotions:
        decision = promotion.decision.value
        gates = promotion.reasons.items() if promotion.reasons else [("", None)]
        for gate, result in gates:
            rows.append(
                {
                    "decided": display.when(promotion.decided_at),
                    "version": promotion.version,
                    "alias": promotion.alias,
                    "decision": decision,
                    "gate": gate or "(none recorded)",
                    "result": _gate_result(result),
                    "detail": _gate_detail(result),
                    "metrics": display.details(promotion.metrics),
                }
            )
    return pd.DataFrame(rows)


def _gate_passed(result: Any) -> bool | None:
    if isinstance(result, bool):
        return result
    if isinstance(result, Mapping) and isinstance(result.get("passed"), bool):
        return bool(result["passed"])
    return None


def _gate_result(result: Any) -> str:
    passed = _gate_passed(result)
    return "" if passed is None else "passed" if passed else "failed"


def _gate_detail(result: Any) -> str:
    if isinstance(result, Mapping):
        return display.details({k: v for k, v in result.items() if k != "passed"})
    return "" if result is None or isinstance(result, bool) else str(result)


def _failed_gates(reasons: Mapping[str, Any]) -> str:
    failed = []
    for gate, result in reasons.items():
        if _gate_passed(result) is False:
            detail = _gate_detail(result)
            failed.append(f"{gate} ({detail})" if detail else gate)
    return "; ".join(failed)


def _lineage_frame(
    model: RegisteredModelInfo | None, promotions: Sequence[PromotionView]
) -> pd.DataFrame:
    """One row per version: what the promotion recorded, filled in from MLflow's tags."""
    rows: dict[str, dict[str, str]] = {}
    for version in model.versions if model else ():
        rows[version.version] = {"version": version.version, "run": version.run_id or ""}
        rows[version.version].update(version.lineage)
    for promotion in sorted(promotions, key=lambda p: p.decided_at):
        row = rows.setdefault(promotion.version, {"version": promotion.version})
        recorded = {
            "run": promotion.run_id,
            "data_fingerprint": promotion.data_fingerprint,
            "feature_spec_hash": promotion.feature_spec_hash,
            "strategy_hash": promotion.strategy_hash,
        }
        row.update({key: value for key, value in recorded.items() if value})
    columns = ["version", "run", *model_registry.LINEAGE_KEYS]
    frame = pd.DataFrame(list(rows.values()), columns=columns).fillna("")
    frame = frame.rename(
        columns={
            "data_fingerprint": "data fingerprint",
            "feature_spec_hash": "feature spec hash",
            "strategy_hash": "strategy hash",
        }
    )
    order = frame["version"].map(lambda v: int(v) if str(v).isdigit() else -1)
    return frame.iloc[order.sort_values(ascending=False).index].reset_index(drop=True)


render()
