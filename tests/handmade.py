"""A hand-made Kaggle-shaped data set small enough to check values by hand.

Two series over 40 sales days from Saturday 2011-01-29 (d_1), the calendar running 45 days:
- FOODS_1_001 at CA_1 sells ``k`` units on day d_k (1, 2, 3, ...), priced every week;
- HOBBIES_1_001 at TX_1 sells nothing until its release in the third week (d_15), then 2 a day.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from m5_assets.generator.calendar import build_calendar

N_SALES_DAYS = 40
N_CALENDAR_DAYS = 45
START = dt.date(2011, 1, 29)
FOODS_PRICES = {11101: 2.0, 11102: 2.5, 11103: 2.5, 11104: 2.0, 11105: 2.0, 11106: 3.0, 11107: 3.0}
HOBBIES_PRICES = {11103: 5.0, 11104: 5.0, 11105: 4.0, 11106: 4.0, 11107: 4.0}


def write_handmade(raw: Path) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    calendar = build_calendar(START, N_CALENDAR_DAYS, ["CA", "TX"])
    calendar.loc[calendar["date"] == "2011-02-06", ["event_name_1", "event_type_1"]] = ["SuperBowl", "Sporting"]
    calendar.loc[calendar["date"] == "2011-02-14", ["event_name_1", "event_type_1"]] = ["ValentinesDay", "Cultural"]
    calendar.loc[:, ["event_name_2", "event_type_2"]] = None
    calendar.to_csv(raw / "calendar.csv", index=False)

    days = {f"d_{k}": [k, 2 if k >= 15 else 0] for k in range(1, N_SALES_DAYS + 1)}
    sales = pd.DataFrame(
        {
            "id": ["FOODS_1_001_CA_1_validation", "HOBBIES_1_001_TX_1_validation"],
            "item_id": ["FOODS_1_001", "HOBBIES_1_001"],
            "dept_id": ["FOODS_1", "HOBBIES_1"],
            "cat_id": ["FOODS", "HOBBIES"],
            "store_id": ["CA_1", "TX_1"],
            "state_id": ["CA", "TX"],
            **days,
        }
    )
    sales.to_csv(raw / "sales_train_validation.csv", index=False)

    prices = [("CA_1", "FOODS_1_001", w, p) for w, p in FOODS_PRICES.items()]
    prices += [("TX_1", "HOBBIES_1_001", w, p) for w, p in HOBBIES_PRICES.items()]
    pd.DataFrame(prices, columns=["store_id", "item_id", "wm_yr_wk", "sell_price"]).to_csv(
        raw / "sell_prices.csv", index=False
    )
