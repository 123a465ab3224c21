"""Inventory: the replenishment plan of a forecast, with safety stock at a service level of your choosing."""

import streamlit as st

from m5_assets import tables
from m5_assets.forecast.inventory import at_service_level
from m5_dashboard import charts, data

st.title("Inventory")
days = data.partition_dates(tables.INVENTORY_PLAN)
if not days:
    st.info("No inventory plan yet: it is issued with each forecast. " + data.NOTHING_YET)
    st.stop()

left, middle, right = st.columns(3)
day = left.selectbox("Forecast date", list(reversed(days)), format_func=str)
planned = data.partition(tables.INVENTORY_PLAN, day)
stores = ["all stores", *sorted(planned["store_id"].unique())]
store = middle.selectbox("Store", stores)
level = right.slider(
    "Service level",
    min_value=0.50,
    max_value=0.995,
    value=float(planned["service_level"].median()),
    step=0.005,
    help="The chance of no stock-out in a replenishment cycle; safety stock = z(level) x lead-time sigma.",
)
shown = at_service_level(planned if store == "all stores" else planned[planned["store_id"] == store], level)

k1, k2, k3, k4 = st.columns(4)
k1.metric("Item-stores", f"{len(shown):,}")
k2.metric("Lead-time demand", f"{shown['lead_time_demand'].sum():,.0f} units")
k3.metric("Safety stock", f"{shown['safety_stock'].sum():,.0f} units")
k4.metric("Reorder points", f"{shown['reorder_point'].sum():,.0f} units")
st.plotly_chart(
    charts.safety_stock_by_store(shown, f"Safety stock at {level:.1%} service, forecast of {day}"), width="stretch"
)
st.subheader("Most exposed: the least certain lead-time demand")
columns = [
    "id",
    "lead_time_days",
    "lead_time_demand",
    "lead_time_sigma",
    "safety_stock",
    "reorder_point",
    "order_up_to",
    "eoq",
    "days_of_cover",
]
# Units to one decimal (a plan orders whole units; the decimal shows where rounding will go), days to one.
in_words = {
    "id": "item at store",
    "lead_time_days": "lead time (days)",
    "lead_time_demand": "lead-time demand (units)",
    "lead_time_sigma": "its uncertainty, sigma (units)",
    "safety_stock": "safety stock (units)",
    "reorder_point": "reorder point (units)",
    "order_up_to": "order up to (units)",
    "eoq": "economic order quantity (units)",
    "days_of_cover": "days of cover",
}
st.dataframe(
    shown.nlargest(20, "lead_time_sigma")[columns].round(1).rename(columns=in_words), width="stretch", hide_index=True
)
