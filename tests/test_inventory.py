import datetime as dt
import math
from itertools import pairwise
from statistics import NormalDist

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from forecasting import QUICK, feature_rows, issue, resource, train

from m5_assets import reader, tables
from m5_assets.definitions import build_definitions
from m5_assets.forecast.inventory import Z_80_UPPER, Policy, orders_beyond_history, plan, policies_for, read_overrides
from m5_assets.intervals import Calibration, calibrate_level

HIERARCHY = {"item_id": "FOODS_1_001", "dept_id": "FOODS_1", "cat_id": "FOODS", "store_id": "CA_1", "state_id": "CA"}


def _bottom(daily: float, upper: float, series: str = "FOODS_1_001_CA_1_validation") -> pd.DataFrame:
    """28 days of a flat forecast whose 80 % interval reaches ``upper`` above it."""
    return pd.DataFrame(
        {"id": series, **HIERARCHY, "horizon": np.arange(1, 29), "forecast": daily, "hi_80": daily + upper}
    )


def _plan(bottom: pd.DataFrame, policy: Policy, price: float = 4.0) -> pd.Series:
    ids = bottom["id"].unique()
    policies = policies_for(
        pd.DataFrame({"store_id": ["CA_1"] * len(ids), "dept_id": ["FOODS_1"] * len(ids)}, index=ids), policy
    )
    return plan(bottom, pd.Series(price, index=ids), policies).iloc[0]


def test_reorder_point_and_eoq_on_a_hand_example():
    # 2 units a day, each day's sigma 1 (its 80 % upper bound z(0.9) above the forecast).
    row = _plan(
        _bottom(2.0, Z_80_UPPER),
        Policy(lead_time_days=4, review_days=3, service_level=0.95, ordering_cost=25, holding_rate=0.25),
    )
    z = NormalDist().inv_cdf(0.95)
    assert row["lead_time_demand"] == pytest.approx(8.0) and row["lead_time_sigma"] == pytest.approx(
        2.0
    )  # sqrt(4 days x 1)
    assert row["safety_stock"] == pytest.approx(z * 2.0)
    assert row["reorder_point"] == pytest.approx(8.0 + z * 2.0)
    assert row["order_up_to"] == pytest.approx(14.0 + z * math.sqrt(7))
    assert row["eoq"] == pytest.approx(math.sqrt(2 * 2.0 * 365 * 25 / (0.25 * 4.0)))
    assert row["days_of_cover"] == pytest.approx((z * 2.0 + row["eoq"]) / 2.0)


def test_safety_stock_grows_with_the_service_level_and_with_uncertainty():
    by_level = [_plan(_bottom(2.0, 1.0), Policy(service_level=s))["safety_stock"] for s in (0.8, 0.9, 0.95, 0.99)]
    assert all(a < b for a, b in pairwise(by_level))
    by_spread = [_plan(_bottom(2.0, u), Policy())["safety_stock"] for u in (0.5, 1.0, 2.0)]
    assert all(a < b for a, b in pairwise(by_spread)) and by_spread[2] == pytest.approx(2 * by_spread[1])


def test_lead_time_sigma_sums_the_daily_variances_of_the_forecasts_sigma():
    bottom = _bottom(2.0, 0.0).assign(sigma=np.r_[np.full(4, 1.0), np.full(24, 3.0)])
    row = _plan(bottom, Policy(lead_time_days=4, review_days=3))
    assert row["lead_time_sigma"] == pytest.approx(2.0)  # sqrt(4 x 1), not the [f, f] interval's 0
    assert row["order_up_to"] == pytest.approx(14.0 + NormalDist().inv_cdf(0.95) * math.sqrt(4 + 3 * 9))


def test_an_intermittent_series_with_an_interval_of_zero_still_gets_safety_stock():
    # A slow item: forecast 0.1 a day, and at that size one day in twenty sold a unit.
    rng = np.random.default_rng(2)
    forecast = np.full(2000, 0.1)
    actual = (rng.uniform(size=2000) < 0.05).astype(float)
    calibration = Calibration(calibrate_level(12, forecast, actual))
    daily = np.full(28, 0.1)
    bottom = _bottom(0.1, 0.0).assign(**calibration.bounds(12, daily), sigma=calibration.sigma(12, daily))
    assert (bottom["lo_80"] == 0).all() and (bottom["hi_80"] == 0).all()
    row = _plan(bottom, Policy(lead_time_days=7))
    # Seven days of a 5 % chance of a unit: a standard deviation near sqrt(7 x 0.05 x 0.95).
    assert row["lead_time_sigma"] == pytest.approx(math.sqrt(7 * 0.05 * 0.95), rel=0.15)
    assert row["safety_stock"] > 0
    assert (
        _plan(bottom.drop(columns="sigma"), Policy(lead_time_days=7))["lead_time_sigma"] == 0
    )  # what the interval alone said


def test_the_most_specific_override_wins(tmp_path):
    path = tmp_path / "overrides.csv"
    path.write_text("store_id,dept_id,lead_time_days,service_level\nCA_1,,10,\n,FOODS_1,,0.99\nCA_1,FOODS_1,3,\n")
    overrides = read_overrides(path, Policy())
    series = pd.DataFrame(
        {"store_id": ["CA_1", "CA_1", "TX_1", "TX_1"], "dept_id": ["FOODS_1", "HOBBIES_1", "FOODS_1", "HOBBIES_1"]}
    )
    chosen = policies_for(series, Policy(), overrides)
    assert chosen["lead_time_days"].tolist() == [3, 10, 7, 7]
    # Each override row is whole: the store x department row keeps the default service level.
    assert chosen["service_level"].tolist() == [0.95, 0.95, 0.99, 0.95]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("store_id,lead_time_days\nCA_1,2.5\n", "line 2, column 'lead_time_days': '2.5' is not a whole number"),
        ("store_id,service_level\nCA_1,1.2\n", "line 2, column 'service_level': must be at least 0.5 and below 1"),
        ("store_id,lead_time_days,review_days\nCA_1,20,14\n", "line 2, column 'review_days'"),
        ("store_id,holding_rate\nCA_1,abc\n", "line 2, column 'holding_rate': 'abc' is not a number"),
        ("store_id,dept_id,ordering_cost\n,,3\n", "line 2, columns store_id/dept_id: at least one"),
        ("store_id,ordering_cost\nCA_1,3\nCA_1,4\n", "line 3: store_id/dept_id ('CA_1', '') repeat line 2"),
        ("store,lead_time_days\nCA_1,3\n", "line 1: columns must be"),
        ("store_id,lead_time_days\nCA_1,3,9\n", "line 2: more cells than the header's 2"),
    ],
)
def test_a_malformed_override_file_is_rejected_naming_the_line_and_column(tmp_path, text, named):
    path = tmp_path / "overrides.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match="overrides") as error:
        read_overrides(path, Policy())
    assert f"overrides.csv, {named}" in str(error.value)


def test_inventory_plan_is_issued_with_each_forecast_partition(model_data):
    train(model_data, "2016-05-01", QUICK)
    day = dt.date(2016, 5, 2)
    result = issue(model_data, day.isoformat())
    root = model_data / "warehouse"
    held = pq.read_table(tables.INVENTORY_PLAN.path(root, day)).to_pandas()
    bottom = reader.read_partition(root, tables.FORECASTS, day)
    assert sorted(held["id"]) == sorted(bottom["id"].unique())
    assert (held["reorder_point"] >= held["lead_time_demand"]).all() and (held["safety_stock"] >= 0).all()
    prices = feature_rows(root)[["id", "date", "sell_price"]]
    on_day = prices[prices["date"] == day].set_index("id")["sell_price"]
    np.testing.assert_allclose(held.set_index("id")["unit_price"], on_day.loc[held["id"]].to_numpy())
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "inventory_plan"
    ]
    shown = {k: v.value for k, v in event.materialization.metadata.items()}
    assert shown["dagster/row_count"] == len(held) and shown["series"] == len(held)
    assert shown["total_safety_stock"] == pytest.approx(round(held["safety_stock"].sum(), 1))
    assert "CA_1" in shown["by_store"] and held.loc[held["lead_time_sigma"].idxmax(), "id"] in shown["most_at_risk"]


def test_a_plan_past_the_series_history_is_named_and_refused_but_an_uncertain_one_is_not():
    planned = pd.concat(
        [_plan(_bottom(2.0, 3.0, series=f"S{k}"), Policy()).to_frame().T for k in range(3)], ignore_index=True
    )
    planned["id"] = ["S0", "S1", "S2"]
    highest = pd.Series({"S0": 6.0, "S1": 1.0})  # S2 never sold: a floor of one unit a day
    found = orders_beyond_history(planned, highest)
    # S0: 2 a day with wide intervals against a record of 6: fine. S1 and S2: a record of 1, so
    # 2 units every day is exactly the bound and the reorder point (lead demand + safety) beyond it.
    assert set(found["id"]) == {"S1", "S2"} and set(found["column"]) == {"reorder_point", "order_up_to"}
    assert (found["value"] > found["bound"]).all()
    assert orders_beyond_history(planned, pd.Series({"S0": 6.0, "S1": 6.0, "S2": 6.0})).empty


def test_a_blown_up_forecast_never_reaches_the_inventory_plan(model_data):
    train(model_data, "2016-05-01", QUICK)
    day = dt.date(2016, 5, 2)
    assert issue(model_data, day.isoformat()).success
    root = model_data / "warehouse"
    published = tables.INVENTORY_PLAN.path(root, day).read_bytes()
    forecasts = tables.FORECASTS.path(root, day)
    bottom = pq.read_table(forecasts).to_pandas()
    blown = bottom["id"] == bottom["id"].iloc[0]
    bottom.loc[blown, ["forecast", "hi_80"]] *= 1e6
    bottom.to_parquet(forecasts, index=False)

    defs = build_definitions(resource(model_data))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [defs.get_assets_def("inventory_plan")],
            partition_key=day.isoformat(),
            instance=instance,
            resources=defs.resources,
            raise_on_error=False,
        )
    assert not result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "orders_within_history" and not check.passed
    assert bottom["id"].iloc[0] in check.description
    assert tables.INVENTORY_PLAN.path(root, day).read_bytes() == published  # the last good plan stays
