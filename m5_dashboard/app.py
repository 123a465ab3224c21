"""``streamlit run m5_dashboard/app.py`` (``make dashboard``): the pages, declared once."""

from pathlib import Path

import streamlit as st

from m5_dashboard.data import sync_warehouse
from m5_dashboard.drill import FORECASTING_PAGE

HERE = Path(__file__).parent
st.set_page_config(page_title="m5-forecasting", layout="wide")
pages = [
    st.Page(HERE / "pages" / "home.py", title="Home", default=True),
    st.Page(HERE / "pages" / "forecasting.py", title="Forecasting", url_path=FORECASTING_PAGE),
    st.Page(HERE / "pages" / "performance.py", title="Performance"),
    st.Page(HERE / "pages" / "inventory.py", title="Inventory"),
    st.Page(HERE / "pages" / "data_quality.py", title="Data"),
]
sync_warehouse()  # with $M5_WAREHOUSE_URL: what the pipeline published since the last look
st.navigation(pages).run()
