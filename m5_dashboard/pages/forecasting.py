"""Forecasting: one level and key, its history, forecast and bands; older forecasts against what sold."""

import datetime as dt

import pandas as pd
import streamlit as st

from m5_assets.metrics import bias_percent, wape
from m5_dashboard import charts, data, drill

st.title("Forecasts")
days = data.forecast_dates()
if not days:
    st.info(data.NOTHING_YET)
    st.stop()

params = st.query_params
day_options = list(reversed(days))
asked = params.get("date")
day = st.selectbox(
    "Forecast issued on",
    day_options,
    index=day_options.index(dt.date.fromisoformat(asked)) if asked in {d.isoformat() for d in days} else 0,
    format_func=lambda d: d.isoformat(),
)
# Each filter offers only what the wider ones leave (choosing a state narrows the stores); the
# choices name one series of an M5 level, and the URL keeps them, so a copied link shows this view.
series = data.hierarchy(day)
asked_filters = drill.from_url(params)
chosen: dict[str, str] = {}
for column_box, (column, label, _) in zip(st.columns(len(drill.FILTERS)), drill.FILTERS, strict=True):
    options = [drill.ALL, *sorted(drill.narrowed(series, chosen)[column].unique())]
    wanted = asked_filters.get(column, drill.ALL)
    chosen[column] = column_box.selectbox(label, options, index=options.index(wanted) if wanted in options else 0)
    if chosen[column] == drill.ALL:
        del chosen[column]
level, filters = drill.level_of(chosen)
st.query_params.from_dict({"date": day.isoformat(), **drill.to_url(chosen)})
key = data.level_key(level, filters)
if level == 12:
    frame = data.forecasts(day)
    shown = frame[(frame["item_id"] == filters["item_id"]) & (frame["store_id"] == filters["store_id"])]
else:
    frame = data.levels(day)
    frame = frame[frame["level"] == level]
    for column, value in filters.items():
        frame = frame[frame[column] == value]
    shown = frame
st.caption(f"Level {level}: {data.LEVEL_NAMES[level]}, series {key}")
shown = shown.sort_values("horizon")

history = data.actual_series(filters, day - dt.timedelta(days=120), day - dt.timedelta(days=1))
after = data.actual_series(filters, day, day + dt.timedelta(days=data.HORIZON - 1))
named = data.LEVEL_NAMES[level] if level == 1 else f"{data.LEVEL_NAMES[level]} {key}"  # not "Total total"
title = f"{named}: forecast issued {day} (model version {shown['model_version'].iloc[0]})"
last = day + dt.timedelta(days=data.HORIZON - 1)
year_before = dt.timedelta(days=charts.LAST_YEAR_DAYS)
last_year = data.actual_series(filters, day - year_before, last - year_before)
st.plotly_chart(charts.forecast_chart(history, shown, after, title, last_year, data.events(day, last)), width="stretch")
if not after.empty:
    joined = shown.merge(after.assign(date=pd.to_datetime(after["date"]).dt.date), on="date")
    error, sold = joined["forecast"] - joined["units"], float(joined["units"].sum())
    st.caption(
        f"{len(joined)} of 28 days have actuals so far: WAPE {wape(float(error.abs().sum()), sold):.1f} %, "
        f"bias {bias_percent(float(error.sum()), sold):+.1f} % (Σ|forecast − actual| and Σ(forecast − actual) "
        "over units sold, as the Performance page scores each level)."
    )

columns = ["date", "horizon", "forecast", "lo_50", "hi_50", "lo_80", "hi_80", "lo_95", "hi_95", "model_version"]
in_words = {
    "horizon": "days ahead",
    "forecast": "forecast (units)",
    **{f"{side}_{c}": f"{c} % band, {word}" for c in (50, 80, 95) for side, word in (("lo", "low"), ("hi", "high"))},
    "model_version": "model version",
}
st.dataframe(shown[columns].round(1).rename(columns=in_words), width="stretch", hide_index=True)
left, middle, right = st.columns(3)
left.download_button(
    "Download these rows (CSV)",
    shown[columns].to_csv(index=False),
    f"forecast_{day}_{level}_{key.replace('/', '_')}.csv",
    "text/csv",
)
# Built only when clicked: level 12 at full scale is every series' 28 days (853,720 rows).
middle.download_button(
    f"Download level {level} ({data.LEVEL_NAMES[level]}), every series (CSV)",
    lambda: data.level_csv(day, level),
    f"forecast_{day}_level_{level}.csv",
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
