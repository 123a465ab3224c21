"""Forecasting: one level and key, its history, forecast and bands; older forecasts against what sold."""

import datetime as dt

import pandas as pd
import streamlit as st

from m5_dashboard import charts, data

st.title("Forecasts")
days = data.forecast_dates()
if not days:
    st.info(data.NOTHING_YET)
    st.stop()

left, middle, right = st.columns(3)
day = left.selectbox("Forecast issued on", list(reversed(days)), format_func=lambda d: d.isoformat())
level = middle.selectbox("Level", list(range(1, 13)), index=2, format_func=lambda k: f"{k}: {data.LEVEL_NAMES[k]}")
if level == 12:
    frame = data.forecasts(day)
    keys = sorted((frame["item_id"] + "/" + frame["store_id"]).unique())
    key = right.selectbox("Item / store", keys)
    item, store = key.split("/")
    shown = frame[(frame["item_id"] == item) & (frame["store_id"] == store)]
    filters = {"item_id": item, "store_id": store}
else:
    frame = data.levels(day)
    frame = frame[frame["level"] == level]
    keyed = frame.assign(key=[data.level_key(level, r) for r in frame.to_dict("records")])
    key = right.selectbox("Key", sorted(keyed["key"].unique()))
    shown = keyed[keyed["key"] == key].drop(columns=["key"])
    filters = data.level_filters(level, key)
shown = shown.sort_values("horizon")

history = data.actual_series(filters, day - dt.timedelta(days=120), day - dt.timedelta(days=1))
after = data.actual_series(filters, day, day + dt.timedelta(days=data.HORIZON - 1))
title = f"{data.LEVEL_NAMES[level]} {key}: forecast issued {day} (model version {shown['model_version'].iloc[0]})"
st.plotly_chart(charts.forecast_chart(history, shown, after, title), width="stretch")
if not after.empty:
    joined = shown.merge(after.assign(date=pd.to_datetime(after["date"]).dt.date), on="date")
    error = (joined["forecast"] - joined["units"]).abs().sum() / max(joined["units"].sum(), 1e-9)
    st.caption(f"{len(joined)} of 28 days have actuals so far; absolute error {100 * error:.1f} % of units sold.")

columns = ["date", "horizon", "forecast", "lo_50", "hi_50", "lo_80", "hi_80", "lo_95", "hi_95", "model_version"]
st.dataframe(shown[columns].round(3), width="stretch", hide_index=True)
left, right = st.columns(2)
left.download_button(
    "Download these rows (CSV)",
    shown[columns].to_csv(index=False),
    f"forecast_{day}_{level}_{key.replace('/', '_')}.csv",
    "text/csv",
)
# Built only when clicked: at full scale it is every series' 56 days.
right.download_button(
    "Download the whole forecast as a Kaggle submission (id, F1..F28)",
    lambda: data.submission_csv(day),
    f"submission_{day}.csv",
    "text/csv",
    help="One row per series and suffix: _evaluation rows hold this forecast, _validation rows the 28 days "
    "sold before it, as in the M5 competition's final phase. `m5 export` writes the same file.",
)
