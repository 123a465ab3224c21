import pandas as pd
from forecasting import run_pipeline
from handmade import N_SALES_DAYS

from m5_assets.warehouse import table_path


def test_long_table_has_one_row_per_series_and_day(handmade_warehouse, data_dir):
    long = pd.read_parquet(table_path(handmade_warehouse, "sales_long"))
    assert len(long) == 2 * N_SALES_DAYS
    assert not long.duplicated(["id", "date"]).any()

    assert run_pipeline(data_dir).success
    tiny = pd.read_parquet(table_path(data_dir / "warehouse", "sales_long"))
    raw = pd.read_csv(data_dir / "raw" / "sales_train_evaluation.csv")
    n_days = sum(c.startswith("d_") for c in raw.columns)
    assert len(tiny) == len(raw) * n_days
    assert (
        tiny.groupby("id", observed=True)["units"].sum().sort_index()
        == raw.set_index("id").filter(like="d_").sum(axis=1).sort_index()
    ).all()


def test_units_prices_snap_and_events_land_on_the_right_rows(handmade_warehouse):
    long = pd.read_parquet(table_path(handmade_warehouse, "sales_long")).set_index(["id", "d"])
    foods, hobbies = "FOODS_1_001_CA_1_validation", "HOBBIES_1_001_TX_1_validation"

    row = long.loc[(foods, "d_9")]  # Sunday 2011-02-06: week 11102, SuperBowl, SNAP in CA (days 1-10)
    assert (str(row["date"]), row["wm_yr_wk"], row["units"], row["sell_price"]) == ("2011-02-06", 11102, 9, 2.5)
    assert (row["event_name_1"], row["event_type_1"], row["snap"]) == ("SuperBowl", "Sporting", 1)
    assert long.loc[(foods, "d_14"), "snap"] == 0  # 2011-02-11

    assert long.loc[(foods, "d_4"), "snap"] == 1  # 2011-02-01: SNAP in CA (days 1-10)
    assert long.loc[(hobbies, "d_4"), "snap"] == 1  # 2011-02-01: SNAP in TX (day 1)
    assert long.loc[(hobbies, "d_5"), "snap"] == 0  # 2011-02-02: not in TX
    assert long.loc[(foods, "d_5"), "snap"] == 1

    assert pd.isna(long.loc[(hobbies, "d_14"), "sell_price"])  # before release
    assert (long.loc[(hobbies, "d_15"), "units"], long.loc[(hobbies, "d_15"), "sell_price"]) == (2, 5.0)
    assert long.loc[(hobbies, "d_29"), "sell_price"] == 4.0  # week 11105


def test_long_table_is_ordered_by_series_then_day(handmade_warehouse):
    long = pd.read_parquet(table_path(handmade_warehouse, "sales_long"))
    assert long[["id", "date"]].equals(long.sort_values(["id", "date"])[["id", "date"]].reset_index(drop=True))
