"""Streamlit dashboard for KPI review: Home, Forecasting, Performance, Data.

It reads the warehouse through ``m5_assets.reader`` only; nothing here imports Dagster, the asset
definitions or the API.
"""
