"""Unit sales and weekly prices that behave like retail demand at item-store level.

Each series is a Poisson draw around a rate built from: an item level (slow and fast movers, a
log-normal spread fitted to real M5 per-series means), a store level, weekly and yearly
seasonality by category, a slow trend, SNAP-day lift for food in the series' state, event
effects, a price response to weekly price changes and promotions, and stock-out spells. Items
are released part-way through for some series, with no prices before release as in M5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import pandas as pd


class CategoryParams(TypedDict):
    level: float
    weekly: tuple[float, ...]
    yearly: tuple[float, float]
    snap: float
    price: float


# Per-category parameters: level shift (log), weekly profile from Saturday, yearly amplitude and
# phase (day of year of the peak), SNAP lift, typical price.
CATEGORY: dict[str, CategoryParams] = {
    "FOODS": dict(
        level=0.45, weekly=(1.22, 1.25, 0.98, 0.90, 0.88, 0.90, 1.02), yearly=(0.08, 200), snap=0.18, price=3.0
    ),
    "HOUSEHOLD": dict(
        level=-0.05, weekly=(1.20, 1.18, 0.97, 0.92, 0.91, 0.92, 1.00), yearly=(0.06, 330), snap=0.03, price=5.5
    ),
    "HOBBIES": dict(
        level=-0.35, weekly=(1.25, 1.15, 0.95, 0.92, 0.90, 0.93, 1.02), yearly=(0.15, 350), snap=0.0, price=6.0
    ),
}
UNKNOWN_CATEGORY: CategoryParams = dict(level=0.0, weekly=(1.0,) * 7, yearly=(0.05, 180), snap=0.0, price=4.0)


@dataclass(frozen=True)
class Context:
    """What every series of a data set shares: days, weeks, SNAP flags and event effects."""

    day_of_week: np.ndarray  # 0 = Saturday, as Kaggle's wday - 1
    day_of_year: np.ndarray
    week_index: np.ndarray  # index of each day's wm_yr_wk in ``weeks``
    weeks: np.ndarray
    snap: dict[str, np.ndarray]
    event_multiplier: dict[str, np.ndarray]  # per category, 1.0 on days without an event
    store_level: dict[str, float]
    n_sales_days: int


def build_context(calendar: pd.DataFrame, n_sales_days: int, store_ids: list[str], seed: int) -> Context:
    """Derive the shared drivers from the calendar, with event effects drawn from ``seed``."""
    rng = np.random.default_rng([seed, 1])
    dates = pd.to_datetime(calendar["date"])
    weeks, week_index = np.unique(calendar["wm_yr_wk"].to_numpy(), return_inverse=True)
    event_names = sorted(set(calendar["event_name_1"].dropna()) | set(calendar["event_name_2"].dropna()))
    event_multiplier = {}
    for category in CATEGORY:
        effect = {name: float(np.exp(rng.normal(0.0, 0.15))) for name in event_names}
        # Stores close on Christmas: M5 shows almost no sales that day.
        effect["Christmas"] = 0.02
        multiplier = np.ones(len(calendar))
        for column in ("event_name_1", "event_name_2"):
            names = calendar[column].to_numpy()
            has = pd.notna(names)
            multiplier[has] *= np.array([effect[n] for n in names[has]])
        event_multiplier[category] = multiplier
    snap = {c.removeprefix("snap_"): calendar[c].to_numpy(bool) for c in calendar.columns if c.startswith("snap_")}
    store_level = {store: float(np.exp(rng.normal(0.0, 0.3))) for store in store_ids}
    return Context(
        day_of_week=(calendar["wday"].to_numpy() - 1) % 7,
        day_of_year=dates.dt.dayofyear.to_numpy(),
        week_index=week_index,
        weeks=weeks,
        snap=snap,
        event_multiplier=event_multiplier,
        store_level=store_level,
        n_sales_days=n_sales_days,
    )


def _weekly_prices(rng: np.random.Generator, regular: float, n_weeks: int) -> tuple[np.ndarray, np.ndarray]:
    """Shelf price per week and its regular (non-promotion) level, in cents-rounded dollars."""
    changes = rng.random(n_weeks) < 0.01
    steps = np.where(changes, np.exp(rng.normal(0.02, 0.07, n_weeks)), 1.0)
    regular_path = regular * np.cumprod(steps)
    promo_start = rng.random(n_weeks) < 0.035
    promo = promo_start | np.roll(promo_start & (rng.random(n_weeks) < 0.5), 1)
    discount = np.where(promo, rng.uniform(0.1, 0.3, n_weeks), 0.0)
    # Shelf prices end in the same 7, 8 or 9 cents for an item, as retail prices do.
    shelf = np.floor(regular_path * (1 - discount) * 10) / 10 + rng.choice([0.07, 0.08, 0.09])
    return np.round(np.maximum(shelf, 0.09), 2), regular_path


def simulate_item(
    ctx: Context,
    item_seed: list[int],
    category: str,
    store_ids: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Units (stores x sales days, int) and prices (stores x weeks, NaN before release) of one item."""
    rng = np.random.default_rng(item_seed)
    params = CATEGORY.get(category, UNKNOWN_CATEGORY)
    n_days, n_weeks = ctx.n_sales_days, len(ctx.weeks)
    day_week = ctx.week_index[:n_days]

    # Per-series means of real M5 follow a log-normal with median about 0.64 units a day.
    item_level = np.exp(np.log(0.5) + params["level"] + rng.normal(0.0, 1.15))
    regular_price = params["price"] * np.exp(rng.normal(0.0, 0.55))
    elasticity = rng.uniform(1.0, 3.0)
    weekly = np.asarray(params["weekly"])[ctx.day_of_week[:n_days]]
    amplitude, peak = params["yearly"]
    yearly = 1 + amplitude * np.cos(2 * np.pi * (ctx.day_of_year[:n_days] - peak) / 365.25)
    event = ctx.event_multiplier.get(category, np.ones(len(ctx.day_of_week)))[:n_days]
    item_released = 0 if rng.random() < 0.7 else int(rng.uniform(0, 0.7 * n_days))

    units = np.zeros((len(store_ids), n_days), dtype=np.int64)
    prices = np.full((len(store_ids), n_weeks), np.nan)
    t = np.arange(n_days) / 365.25
    for row, store in enumerate(store_ids):
        state = store.split("_")[0]
        released = item_released + (int(rng.exponential(60)) if rng.random() < 0.3 else 0)
        released = min(released, n_days - 1)
        shelf, regular = _weekly_prices(rng, regular_price * np.exp(rng.normal(0, 0.04)), n_weeks)
        first_week = day_week[released]
        prices[row, first_week:] = shelf[first_week:]
        price_effect = (shelf / regular) ** (-elasticity) * (regular / regular_price) ** -0.5
        snap = 1 + params["snap"] * ctx.snap.get(state, np.zeros(n_days, bool))[:n_days]
        trend = np.exp(rng.normal(0.0, 0.12) * t)
        series_level = item_level * ctx.store_level[store] * np.exp(rng.normal(0.0, 0.3))
        rate = series_level * weekly * yearly * event * snap * trend * price_effect[day_week]
        # Gamma noise makes the counts over-dispersed, as retail demand is.
        shape = rng.uniform(1.5, 4.0)
        rate = rate * rng.gamma(shape, 1 / shape, n_days)
        rate[:released] = 0.0
        rate[_stockout_mask(rng, n_days)] = 0.0
        units[row] = rng.poisson(rate)
    return units, prices


def _stockout_mask(rng: np.random.Generator, n_days: int) -> np.ndarray:
    """Days lost to out-of-stock spells: rare starts, lengths of one to a few weeks."""
    mask = np.zeros(n_days, dtype=bool)
    for start in np.flatnonzero(rng.random(n_days) < 0.002):
        mask[start : start + 1 + int(rng.exponential(10))] = True
    return mask
