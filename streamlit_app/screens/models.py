"""Models: registered models and their versions with metrics, which version is champion,
live quality per version beside its validation figures (with a chart over time), the
promotion history with every gate's result and the refusal reasons, the challenger's shadow
runs (streamlit_app/shadow_section.py), each version's lineage
(data fingerprint, feature spec hash, strategy hash), and the operator's actions on a
champion (streamlit_app/model_actions.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from streamlit_app import charts, context, display, model_actions, model_registry, shadow_section
from streamlit_app.model_registry import RegisteredModelInfo, RegistryRead
from tradepipe.config import Settings
from tradepipe.db import ShadowRunView, list_shadow_runs
from tradepipe.db.queries import list_model_promotions
from tradepipe.db.views import PromotionView
from tradepipe.enums import PromotionDecision
from tradepipe.quality import QualityReference
from tradepipe.quality_report import VersionQuality, quality_from_evidence

REGISTRY_TTL_SECONDS = 30  # MLflow is asked at most this often per store
QUALITY_TTL_SECONDS = 60  # the evidence is read and labelled at most this often


@st.cache_data(ttl=REGISTRY_TTL_SECONDS, show_spinner="Reading the MLflow model registry…")
def _registry(tracking_uri: str) -> RegistryRead:
    return model_registry.read(tracking_uri)


@st.cache_data(ttl=QUALITY_TTL_SECONDS, show_spinner="Measuring live model quality…")
def _quality(
    decision_dir: str, market_data_dir: str, exchange: str, tracking_uri: str
) -> tuple[tuple[VersionQuality, ...], str | None]:
    """Live quality of every model version in the decision log; never raises."""
    from pathlib import Path

    from tradepipe.registry import ModelRegistry, RegistryError

    def reference_of(name: str, version: str) -> QualityReference | None:
        try:
            return ModelRegistry(tracking_uri).quality_reference(name, version)
        except RegistryError:
            return None  # the live figures stand on their own

    try:
        found = quality_from_evidence(
            Path(decision_dir), Path(market_data_dir), exchange, reference_of
        )
    except Exception as error:  # unreadable evidence is shown, not raised
        return (), f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return tuple(found), None


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
    qualities, problem = _quality(
        str(current.resolved_decision_log_dir),
        str(current.resolved_market_data_dir),
        current.record_exchange,
        current.resolved_mlflow_tracking_uri,
    )
    if problem:
        st.warning(f"live model quality cannot be measured: {problem}")
    shadows = context.read(current, list_shadow_runs)
    names = sorted(set(registered) | {p.model_name for p in promotions})
    if not names:
        st.info(
            "No models yet: models appear once training registers them in MLflow, and their "
            "promotion decisions once the gates have run."
        )
        return
    for name in names:
        _model(
            name,
            registered.get(name),
            [p for p in promotions if p.model_name == name],
            [q for q in qualities if q.model == name],
            [run for run in shadows if run.model_name == name],
        )


def _model(
    name: str,
    model: RegisteredModelInfo | None,
    promotions: Sequence[PromotionView],
    qualities: Sequence[VersionQuality] = (),
    shadows: Sequence[ShadowRunView] = (),
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
    _live_quality(qualities)
    if shadows or (model is not None and "challenger" in model.aliases):
        shadow_section.render(shadows, model.aliases.get("challenger") if model else None)
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


def _live_quality(qualities: Sequence[VersionQuality]) -> None:
    st.markdown(
        "**Live quality** (the engine's recorded decisions, labelled once their "
        "triple-barrier outcome is known, beside the validation figures of training)"
    )
    if not qualities:
        st.caption("No recorded decision of this model yet (the engine's record_decisions).")
        return
    st.dataframe(_quality_frame(qualities), hide_index=True)
    for item in qualities:
        if item.series:
            reference = item.reference
            points = [
                (pd.Timestamp(end, unit="ms", tz="UTC").to_pydatetime(), dict(q.figures))
                for end, q in item.series
            ]
            validation = dict(reference.figures) if reference is not None else None
            st.plotly_chart(charts.quality_figure(item.version, points, validation))


def _quality_frame(qualities: Sequence[VersionQuality]) -> pd.DataFrame:
    rows = []
    for item in qualities:
        live = item.quality.figures
        validation = item.reference.figures if item.reference is not None else {}
        row: dict[str, Any] = {
            "version": item.version,
            "decisions": item.quality.decisions,
            "matured": item.quality.matured,
        }
        for key, label in charts.QUALITY_LINES:
            row[f"{label} live"] = _shown(live.get(key))
            row[f"{label} validation"] = _shown(validation.get(key))
        row["max feature PSI"] = _shown(item.quality.max_feature_psi)
        row["prediction PSI"] = _shown(item.quality.prediction_psi)
        row["from"] = display.when(pd.Timestamp(item.window_start_ms, unit="ms", tz="UTC"))
        rows.append(row)
    return pd.DataFrame(rows)


def _shown(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"  # NaN != NaN


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
    lineage = model.lineage if model else {}
    for version in model.versions if model else ():
        rows[version.version] = {"version": version.version, "run": version.run_id or ""}
        rows[version.version].update(lineage.get(version.version, {}))
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
