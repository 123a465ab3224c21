"""Drilling down the hierarchy: the filters a planner sets (state, store, category, department,
item), the M5 level and series they name, and the link that reproduces them."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

import pandas as pd

from m5_assets.tables import LEVEL_KEYS

# (hierarchy column, label, URL parameter), from the widest to the narrowest.
FILTERS = (
    ("state_id", "State", "state"),
    ("store_id", "Store", "store"),
    ("cat_id", "Category", "cat"),
    ("dept_id", "Department", "dept"),
    ("item_id", "Item", "item"),
)
ALL = "All"
FORECASTING_PAGE = "forecasting"  # the Forecasting page's URL path (app.py declares it)
# A narrower choice already says the wider one: a store lies in one state, an item in one department.
IMPLIED = {"store_id": ("state_id",), "dept_id": ("cat_id",), "item_id": ("dept_id", "cat_id")}


def narrowed(series: pd.DataFrame, chosen: Mapping[str, str]) -> pd.DataFrame:
    """The rows of ``series`` (one per bottom series, with the hierarchy columns) that ``chosen`` keeps."""
    kept = pd.Series(True, index=series.index)
    for column, value in chosen.items():
        kept &= series[column] == value
    return series[kept]


def level_of(chosen: Mapping[str, str]) -> tuple[int, dict[str, str]]:
    """The M5 level whose one series ``chosen`` names, and that series' filter (its key columns)."""
    named = {c: v for c, v in chosen.items() if v != ALL}
    implied = {wider for narrower in named for wider in IMPLIED.get(narrower, ())}
    filters = {c: v for c, v in named.items() if c not in implied}
    for level, keys in LEVEL_KEYS.items():
        if set(keys) == set(filters):
            return level, {k: filters[k] for k in keys}
    raise ValueError(f"no M5 level groups by {sorted(filters)}")  # every combination of FILTERS has one


def from_url(params: Mapping[str, str]) -> dict[str, str]:
    """The filters a link carries (unknown parameters ignored)."""
    return {column: params[name] for column, _, name in FILTERS if params.get(name)}


def to_url(chosen: Mapping[str, str]) -> dict[str, str]:
    """The URL parameters that reproduce ``chosen`` (a filter left at All is left out)."""
    return {name: chosen[column] for column, _, name in FILTERS if chosen.get(column, ALL) != ALL}


def link(params: Mapping[str, str]) -> str:
    """A relative link to the Forecasting page showing ``params`` (from ``to_url``, with a date)."""
    return f"{FORECASTING_PAGE}?{urlencode(dict(params))}"
