"""Performance: accuracy over forecast dates, per level, by store and department, the models, and
feature drift."""

import json

import pandas as pd
import streamlit as st

from m5_assets import tables
from m5_assets.backtest import report
from m5_assets.monitoring.drift import Thresholds
from m5_dashboard import charts, data, drill

st.title("Performance")
scores = data.accuracy()
if scores.empty:
    st.info("No forecast has been scored yet: scoring needs all 28 days of actuals. " + data.NOTHING_YET)
else:
    st.plotly_chart(charts.wrmsse_over_time(scores), width="stretch")
    day = st.selectbox(
        "Scored forecast date", list(reversed(scores["forecast_date"].tolist())), format_func=lambda d: str(d)
    )
    chosen = scores[scores["forecast_date"] == day].iloc[0]
    per_level = pd.Series({k: chosen[f"wrmsse_level_{k}"] for k in range(1, 13)})
    left, right = st.columns(2)
    left.plotly_chart(charts.wrmsse_per_level(per_level, f"WRMSSE per level, forecast of {day}"), width="stretch")
    cells = data.error_by_store_dept(day)
    if cells.empty:
        right.caption(f"The forecast of {day} was scored before each series' figures were kept: score it again.")
    else:
        right.plotly_chart(
            charts.error_heatmap(cells, f"WAPE of each store x department, forecast of {day}"), width="stretch"
        )
    # Plotly cannot select a heat map's cell: every cell is a row here, worst first, linked to its forecast.
    linked = cells.sort_values("wape", ascending=False)
    linked = linked.assign(
        forecast=[
            drill.link({"date": str(day), **drill.to_url({"store_id": s, "dept_id": d})})
            for s, d in zip(linked["store_id"], linked["dept_id"], strict=True)
        ]
    )
    right.dataframe(
        linked.round(1).rename(
            columns={"store_id": "store", "dept_id": "department", "wape": "WAPE %", "bias": "bias %"}
        ),
        width="stretch",
        hide_index=True,
        height=212,
        column_config={"forecast": st.column_config.LinkColumn("forecast", display_text="open")},
    )

    st.subheader("WAPE, bias and interval coverage per level")
    figures = data.level_figures(chosen)
    if figures["WAPE %"].isna().all():
        st.caption(f"The forecast of {day} was scored before these figures were kept: score it again to see them.")
    else:
        short = data.coverage_shortfalls(figures, day)
        if short:
            st.warning(
                f"Intervals too narrow for the forecast of {day}, short of nominal by more than chance explains: "
                + "; ".join(short)
                + ". Safety stock set from these bands would run out more often than planned."
            )
        help_of = {shown: data.level_figure_help(prefix) for prefix, shown in data.LEVEL_FIGURES}
        st.dataframe(
            figures.round(1),
            width="stretch",
            hide_index=True,
            column_config={shown: st.column_config.NumberColumn(shown, help=text) for shown, text in help_of.items()},
        )
        level = st.selectbox(
            "Level shown over time",
            list(data.LEVEL_NAMES),
            index=0,
            format_func=lambda k: f"{k}: {data.LEVEL_NAMES[k]}",
        )
        st.plotly_chart(charts.level_figures_over_time(scores, level, data.LEVEL_NAMES[level]), width="stretch")
        st.caption(" ".join(f"**{shown}**: {text}." for shown, text in help_of.items()))

    if "shadow_model_version" in scores and scores["shadow_model_version"].notna().any():
        st.subheader("Challengers in shadow")
        st.caption(
            "Newer versions the gate refused, issued beside the champion and scored on the same days: "
            "a lower WRMSSE says promoting them (the promote_model job) would have helped."
        )
        shadowed = scores[scores["shadow_model_version"].notna()]
        st.dataframe(
            shadowed[
                ["forecast_date", "model_version", "wrmsse", "shadow_model_version", "shadow_wrmsse", "shadow_bias_pct"]
            ]
            .round(4)
            .rename(
                columns={
                    "forecast_date": "forecast date",
                    "model_version": "champion version",
                    "wrmsse": "its WRMSSE",
                    "shadow_model_version": "challenger version",
                    "shadow_wrmsse": "challenger's WRMSSE",
                    "shadow_bias_pct": "challenger's bias %",
                }
            ),
            width="stretch",
            hide_index=True,
        )

    st.subheader("Models in use")
    used = (
        scores.groupby("model_version")["forecast_date"]
        .agg(["min", "max", "count"])
        .rename(columns={"min": "first forecast", "max": "last forecast", "count": "scored forecasts"})
    )
    cards = data.model_cards()
    if not cards.empty:
        cards = cards.assign(model_version=cards["model_version"].astype(str)).set_index("model_version")
        # Cards written before issue rules have no rule: their booster's units were issued.
        rules = cards["issue_rule"] if "issue_rule" in cards else pd.Series(None, index=cards.index)
        cards["issued as"] = [json.loads(r)["issued_as"] if isinstance(r, str) else "model" for r in rules]
        # Cards written before the like-for-like score have none: shown empty, not as a zero.
        if "serving_wrmsse_same_window" not in cards:
            cards["serving_wrmsse_same_window"] = float("nan")
        cards["compared with"] = cards["serving_version"].replace("", None)
        shown = cards[
            [
                "cutoff",
                "promoted",
                "promotion_decision",
                "issued as",
                "wrmsse",
                "seasonal_naive_wrmsse",
                "compared with",
                "serving_wrmsse_same_window",
                "trained_at",
            ]
        ].rename(
            columns={
                "promotion_decision": "why",
                "wrmsse": "WRMSSE",
                "seasonal_naive_wrmsse": "seasonal naive WRMSSE",
                "compared with": "compared with version",
                "serving_wrmsse_same_window": "its WRMSSE, same window",
                "trained_at": "trained at",
            }
        )
        st.caption(
            "Each row is scored on its own validation window (the 28 days before its cutoff), so compare within a "
            "row: the model, seasonal naive and the version it was compared with, all on the same days. Down the "
            "column, windows differ."
        )
        st.dataframe(shown.join(used, how="left").round(4), width="stretch")
    else:
        st.dataframe(used, width="stretch")

st.subheader("Backtest")
backtest = data.backtest()
if backtest.empty:
    st.caption(
        "No backtest yet: run `m5 backtest` or launch the backtest job in the Dagster UI. It replays the last "
        "52 weeks: a model each month, a forecast every 7 days, scored beside simple, statistical and mlforecast peers."
    )
else:
    origins = sorted(backtest["origin"].unique())
    st.caption(
        f"{len(origins)} forecast dates, {origins[0]} .. {origins[-1]}, each issued by the monthly model the product "
        "would have used and scored on its 28 days; means over the dates, bias pooled over all of them."
    )
    st.dataframe(report.method_table(backtest).round(4), width="stretch", hide_index=True)
    st.plotly_chart(charts.backtest_over_time(backtest), width="stretch")
    left, right = st.columns(2)
    left.markdown("**Targets**")
    left.dataframe(report.target_table(backtest).round(4), width="stretch", hide_index=True)
    right.markdown("**Intervals: coverage (%) and mean width per level**")
    right.dataframe(report.interval_table(backtest).round(2), width="stretch", hide_index=True)

st.subheader("Feature drift")
drift_days = data.partition_dates(tables.FEATURE_DRIFT)
if drift_days:
    drift_day = st.selectbox("Forecast date", list(reversed(drift_days)), format_func=str, key="drift_day")
    drift = data.partition(tables.FEATURE_DRIFT, drift_day)
    # Statuses were set by the run's thresholds; the lines show the defaults.
    thresholds = Thresholds()
    st.plotly_chart(
        charts.drift_bars(
            drift,
            thresholds.warn_psi,
            thresholds.fail_psi,
            f"Drift against the serving model's validation window, forecast of {drift_day}",
        ),
        width="stretch",
    )
    shown = [
        c
        for c in (
            "feature",
            "family",
            "segment",
            "psi",
            "ks",
            "no_change_psi",
            "importance",
            "score",
            "status",
            "model_version",
        )
        if c in drift
    ]
    in_words = {
        "no_change_psi": "PSI a stable feature shows",
        "importance": "model importance",
        "score": "drift score",
        "model_version": "model version",
        "psi": "PSI",
        "ks": "KS",
    }
    st.dataframe(drift[shown].round(3).rename(columns=in_words), width="stretch", hide_index=True)
else:
    st.caption("No feature drift computed yet: it is issued with each forecast.")
