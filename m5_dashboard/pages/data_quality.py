"""Data: every check's latest result, the feature catalog, and a sales explorer."""

import streamlit as st

from m5_dashboard import charts, data

st.title("Data")
if not data.has_table(data.tables.SALES_LONG):
    st.info(data.NOTHING_YET)
    st.stop()

st.subheader("Asset checks, latest results")
checks = data.check_results()
if checks.empty:
    st.caption("No check has run since this release wrote check results: materialize the assets (`make run`).")
else:
    failed = int((~checks["passed"].astype(bool)).sum())
    st.metric("Checks passing", f"{len(checks) - failed} of {len(checks)}")
    if failed:
        st.error(f"{failed} check(s) failing: listed first, in red. Open one in the Dagster UI for its history.")
    # Failures first, so one failing check out of many is seen without scrolling.
    ordered = checks.assign(failing=~checks["passed"].astype(bool)).sort_values(
        ["failing", "asset", "check"], ascending=[False, True, True]
    )
    shown = ordered.assign(
        result=ordered["passed"].map({True: "passed", False: "FAILED"}),
        dagster=[data.check_url(a) for a in ordered["asset"]],
    )[["asset", "check", "result", "severity", "evaluated_at", "description", "dagster"]]
    red = "color: #b00020; font-weight: 600"
    st.dataframe(
        shown.style.apply(lambda row: [red if row["result"] == "FAILED" else ""] * len(row), axis=1),
        width="stretch",
        hide_index=True,
        column_config={
            "evaluated_at": st.column_config.DatetimeColumn("evaluated at"),
            "dagster": st.column_config.LinkColumn("Dagster UI", display_text="open"),
        },
    )

st.subheader("Feature catalog")
if data.has_table(data.tables.FEATURE_CATALOG):
    st.dataframe(data.feature_catalog(), width="stretch", hide_index=True)

st.subheader("Sales explorer")
days = data.forecast_dates()
series = sorted(data.forecasts(days[-1])["id"].unique()) if days else []
if series:
    chosen = st.selectbox("Series", series)
    st.plotly_chart(charts.sales_chart(data.sales_history(chosen), f"{chosen}: units and shelf price"), width="stretch")
