"""Scoring by store group: the groups' sums, added, score the whole hierarchy exactly as one step
does, through the pure functions and through the score job."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from forecasting import QUICK, issue, score, train

from m5_assets import reader, tables, warehouse
from m5_assets.features.build import load_inputs
from m5_assets.features.catalog import HORIZON
from m5_assets.forecast.accuracy import score_forecast
from m5_assets.forecast.shards import combine_group_scores, score_group, store_groups_of
from m5_assets.intervals import COVERAGES, bound_columns
from m5_assets.warehouse import SHARDS_FOLDER

DAYS = [dt.date(2016, 3, 20), dt.date(2016, 4, 2)]


def _inputs(root, stores=None):
    paths = [t.path(root) for t in (tables.SALES_LONG, tables.RAW_CALENDAR, tables.RAW_SELL_PRICES)]
    return load_inputs(warehouse.connect(), *paths, stores)


def _made_up_forecast(inputs, day: dt.date, version: str, noise: int) -> pd.DataFrame:
    """Every series' 28 days: last year's units with some noise, and intervals around them."""
    rng = np.random.default_rng(noise)
    n = len(inputs.series)
    origin = int(np.searchsorted(inputs.dates.to_numpy(), np.datetime64(day)))
    base = inputs.units[:, origin - 364 : origin - 364 + HORIZON].astype(np.float64)
    forecast = np.clip(base + rng.normal(0, 1, base.shape), 0, None).ravel()
    frame = pd.DataFrame(
        {
            "id": np.repeat(inputs.series["id"].astype(str).to_numpy(), HORIZON),
            "date": np.tile(pd.date_range(day, periods=HORIZON).date, n),
            "horizon": np.tile(np.arange(1, HORIZON + 1), n),
            "forecast": forecast,
            "model_version": version,
        }
    )
    for k, c in enumerate(COVERAGES, start=1):
        lo, hi = bound_columns(c)
        frame[lo], frame[hi] = np.clip(forecast - k, 0, None), forecast + k
    return frame


def _assert_rows_equal(expected: dict, got: dict) -> None:
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert (math.isnan(value) and math.isnan(got[key])) or got[key] == pytest.approx(
                value, rel=1e-9, abs=1e-12
            ), key
        else:
            assert got[key] == value, key


@pytest.mark.parametrize("groups", [2, 4])
def test_store_groups_scores_add_up_to_the_one_step_scores(built, groups):
    root = built["small"]
    whole = _inputs(root)
    bottoms = {day: _made_up_forecast(whole, day, "3", noise=1) for day in DAYS}
    shadows = {DAYS[1]: _made_up_forecast(whole, DAYS[1], "4", noise=2)}
    expected = {day: score_forecast(whole, day, bottoms[day], shadows.get(day)) for day in DAYS}
    stores = sorted(set(whole.series["store_id"].astype(str)))
    parts = [
        score_group(_inputs(root, group), DAYS, bottoms.__getitem__, shadows.get)
        for group in store_groups_of(stores, groups)
    ]
    got = combine_group_scores(parts)
    assert got.keys() == expected.keys()
    for day in DAYS:
        _assert_rows_equal(expected[day], got[day])
    assert expected[DAYS[1]]["shadow_model_version"] == "4" and expected[DAYS[0]]["shadow_model_version"] is None
    # Each level of the hierarchy was scored, the spanning ones from the added sums.
    assert {f"wrmsse_level_{k}" for k in range(1, 13)} <= got[DAYS[0]].keys()


def test_the_score_job_by_store_group_writes_the_one_step_partitions(model_data):
    train(model_data, "2016-04-01", QUICK)
    first, last = "2016-04-20", "2016-04-22"
    issue(model_data, first, last)
    root = model_data / "warehouse"
    assert score(model_data, first, last).success
    one_step = reader.read_accuracy(root)
    for day in pd.date_range(first, last).date:
        (tables.FORECAST_ACCURACY.path(root, day)).unlink()
    result = score(model_data, first, last, store_groups=2)
    assert result.success
    by_group = reader.read_accuracy(root)
    pd.testing.assert_frame_equal(by_group, one_step, check_exact=False, rtol=1e-9)
    steps = {e.step_key for e in result.get_step_success_events()}
    assert {
        "forecast_accuracy.score_store_group[group_0]",
        "forecast_accuracy.score_store_group[group_1]",
        "forecast_accuracy.combine_store_group_scores",
    } <= steps
    shown = {e.partition: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert sorted(shown) == [first, "2016-04-21", last] and shown[first]["wrmsse"].value == round(
        float(one_step["wrmsse"].iloc[0]), 4
    )
    (check,) = result.get_asset_check_evaluations()
    assert check.asset_check_key.name == "accuracy_in_line_with_history"
    assert not (root / SHARDS_FOLDER).exists()
