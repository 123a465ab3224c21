"""Home: what is expected to sell, how right the last forecasts were, which model, how fresh."""

import datetime as dt

import streamlit as st

from m5_dashboard import data, drill

st.title("m5-forecasting: overview")
days = data.forecast_dates()
if not days:
    st.info(data.NOTHING_YET)
    st.stop()
newest = days[-1]
first, last = data.reader().sales_span()
# What needs a look comes first: failing checks, and a newest forecast older than the data allows.
failing = data.failed_checks()
if not failing.empty:
    links = ", ".join(
        f"[{a} · {c}]({u})" for a, c, u in zip(failing["asset"], failing["check"], failing["dagster"], strict=True)
    )
    st.error(f"{len(failing)} data-quality check(s) failing: {links}. The Data page lists them first.")
for run in data.failed_runs().to_dict("records"):
    st.error(
        f"The last {run['job']} run failed (launched by {run['launched_by']}, for {run['partition'] or 'no partition'}, "
        f"at {run['ended_at']}): step {run['step']}: {run['message'].splitlines()[0] if run['message'] else ''} "
        f"[Open the run in Dagster]({run['dagster']})."
    )
due = data.forecast_date_after(last)
if newest < due:
    st.warning(
        f"The newest forecast was issued on {newest}, but the sales run to {last}: the forecast of {due} is due "
        "(the daily schedule, or `make run`, issues it)."
    )
bottom = data.forecasts(newest)
before = (newest - dt.timedelta(days=data.HORIZON), newest - dt.timedelta(days=1))
# One scan of the long table, by store and category (a store lies in one state); every table
# below is a sum of these few rows.
sold = data.actual_sums(*before, by=("state_id", "store_id", "cat_id"))

total = float(bottom["forecast"].sum())
last_28 = float(sold["units"].sum())  # 0 when the window has no sales: no change shown
cards = data.model_cards()
version = str(bottom["model_version"].iloc[0])
card = cards[cards["model_version"].astype(str) == version]
scores = data.accuracy()

row = st.columns(4)
row[0].metric(
    "Units forecast, next 28 days",
    f"{total:,.0f}",
    f"{100 * (total / last_28 - 1):+.1f} % vs the last 28 days" if last_28 else None,
)
# A date is not a change: how far it is from today goes in its help, not in a delta arrow.
row[1].metric("Newest forecast date", newest.isoformat(), help=f"{(newest - dt.date.today()).days:+d} days from today")
row[2].metric("Last sales day", last.isoformat())
row[3].metric(
    "Serving model",
    f"version {version}",
    f"cutoff {card['cutoff'].iloc[-1]}" if not card.empty else "no model card",
    delta_color="off",
)

if scores.empty:
    st.caption("No forecast has been scored yet: scoring needs all 28 days of actuals (the score_forecast job).")
else:
    latest = scores.iloc[-1]
    row = st.columns(4)
    row[0].metric(
        f"WRMSSE, forecast of {latest['forecast_date']}",
        f"{latest['wrmsse']:.3f}",
        f"{latest['wrmsse'] - latest['seasonal_naive_wrmsse']:+.3f} vs seasonal naive",
        delta_color="inverse",
    )
    row[1].metric("Seasonal naive WRMSSE", f"{latest['seasonal_naive_wrmsse']:.3f}")
    row[2].metric("80 % interval coverage", f"{latest['coverage_80']:.1f} %")
    row[3].metric("95 % interval coverage", f"{latest['coverage_95']:.1f} %")

st.subheader(f"Next 28 days from {newest}, against the 28 days before")
tabs = st.tabs(["by state", "by store", "by category"])
for tab, column in zip(tabs, ("state_id", "store_id", "cat_id"), strict=True):
    expected = bottom.groupby(column)["forecast"].sum().rename("forecast next 28 days")
    table = expected.to_frame().join(sold.groupby(column)["units"].sum().rename("sold last 28 days"))
    table["change %"] = 100 * (table["forecast next 28 days"] / table["sold last 28 days"] - 1)
    label = next(label for c, label, _ in drill.FILTERS if c == column)
    tab.dataframe(table.rename_axis(label.lower()).round(1), width="stretch")
    # Each row opens its forecast, drilled down to it, on the Forecasting page.
    opens = [
        f"[{value}]({drill.link({'date': newest.isoformat(), **drill.to_url({column: value})})})"
        for value in table.index
    ]
    tab.markdown("Open the forecast of: " + " · ".join(opens))
