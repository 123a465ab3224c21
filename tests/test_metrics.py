import numpy as np
import pandas as pd
import pytest

from m5_assets.generator import SCALES
from m5_assets.metrics import LEVELS, aggregation, naive_scale, point_metrics, wrmsse


def test_naive_scale_starts_at_the_first_sale():
    # From the first sale on the series is 3, 1, 4: squared changes 4 and 9.
    assert naive_scale(np.array([[0.0, 0, 3, 1, 4]]))[0] == 6.5
    assert np.isnan(naive_scale(np.array([[0.0, 0, 0, 0]])))[0]  # never sold
    assert np.isnan(naive_scale(np.array([[0.0, 0, 0, 5]])))[0]  # sold only on the last day
    # Rows are independent, and a day not known (NaN) counts as a day the series existed.
    np.testing.assert_array_equal(
        naive_scale(np.array([[0.0, 0, 3, 1, 4], [0.0, 0, 0, 0, 0], [np.nan, 1, 1, 1, 1]])), [6.5, np.nan, np.nan]
    )


def _two_series():
    hierarchy = pd.DataFrame(
        {
            "item_id": ["FOODS_1_001", "FOODS_1_002"],
            "dept_id": ["FOODS_1"] * 2,
            "cat_id": ["FOODS"] * 2,
            "store_id": ["CA_1"] * 2,
            "state_id": ["CA"] * 2,
        }
    )
    a = np.array([2.0, 0.0] * 14)  # scale 4
    b = np.array([0.0] * 20 + [1, 1, 1, 1, 3, 3, 3, 3])  # from its first sale: one change of 2 in 7, scale 4/7
    history = np.stack([a, b])
    prices = np.stack([np.full(28, 1.0), np.full(28, 2.0)])  # dollars: A 28, B 32
    actual = np.array([[2.0, 0.0], [3.0, 3.0]])
    forecast = np.array([[0.0, 0.0], [2.0, 2.0]])
    return hierarchy, history, prices, actual, forecast


def test_wrmsse_against_a_hand_computed_example():
    result = wrmsse(*_two_series())
    rmsse_a, rmsse_b = np.sqrt(2 / 4), np.sqrt(1 / (4 / 7))
    bottom = (28 * rmsse_a + 32 * rmsse_b) / 60
    # The total series is 2,0,2,0,... then 3,1,3,1,5,3,5,3: squared changes sum to 125 over 27;
    # the horizon errors are 3 and 1, a mean squared error of 5.
    total = np.sqrt(5 / (125 / 27))
    levels = result.levels.set_index("level")["score"]
    for level in range(1, 10):  # both series share store, state, category and department
        assert levels[level] == pytest.approx(total)
    for level in (10, 11, 12):
        assert levels[level] == pytest.approx(bottom)
    assert result.total == pytest.approx((9 * total + 3 * bottom) / 12)
    weights = result.series.query("level == 12")["weight"].to_numpy()
    np.testing.assert_allclose(weights, [28 / 60, 32 / 60])


def test_a_series_without_sales_in_the_weight_window_carries_no_weight():
    hierarchy, history, prices, actual, forecast = _two_series()
    # Twelve leading days without sales change neither scale (both start at the first sale).
    history = np.hstack([np.zeros((2, 12)), history])
    prices = np.hstack([np.ones((2, 12)), prices])
    stale = np.concatenate([[5.0, 1.0, 4.0], np.zeros(37)])  # sold early, nothing in the last 28 days
    result = wrmsse(
        pd.concat([hierarchy, hierarchy.iloc[[0]].assign(item_id="FOODS_1_003")], ignore_index=True),
        np.vstack([history, stale]),
        np.vstack([prices, np.ones(40)]),
        np.vstack([actual, [4.0, 4.0]]),
        np.vstack([forecast, [0.0, 0.0]]),
    )
    bottom = result.series.query("level == 12").set_index("item_id")
    assert bottom.loc["FOODS_1_003", "weight"] == 0.0
    # It is still scored, with changes 16, 9, 16 and then 36 zeros from its first sale.
    assert bottom.loc["FOODS_1_003", "rmsse"] == pytest.approx(np.sqrt(16 / (41 / 39)))
    reference = wrmsse(*_two_series()).levels.set_index("level").loc[12, "score"]
    assert result.levels.set_index("level").loc[12, "score"] == pytest.approx(reference)


def test_a_perfect_forecast_scores_zero_and_a_worse_one_scores_higher():
    hierarchy, history, prices, actual, forecast = _two_series()
    assert wrmsse(hierarchy, history, prices, actual, actual).total == 0.0
    worse = wrmsse(hierarchy, history, prices, actual, forecast * 0)
    assert worse.total > wrmsse(hierarchy, history, prices, actual, forecast).total


def test_aggregation_levels_have_the_m5_series_counts_and_sum_their_children():
    scale = SCALES["full"]
    items = [(f"{dept}_{k:03d}", dept) for dept, n in scale.items_per_dept.items() for k in range(1, n + 1)]
    hierarchy = pd.DataFrame(
        [
            {
                "item_id": item,
                "dept_id": dept,
                "cat_id": dept.rsplit("_", 1)[0],
                "store_id": store,
                "state_id": store[:2],
            }
            for store in scale.store_ids
            for item, dept in items
        ]
    )
    counts = [aggregation(hierarchy, keys)[0].shape[0] for _, _, keys in LEVELS]
    assert counts == [1, 3, 10, 3, 7, 9, 21, 30, 70, 3049, 9147, 30490]
    assert sum(counts) == 42840  # rows of the official weights file

    units = np.arange(len(hierarchy), dtype=float)[:, None]
    matrix, groups = aggregation(hierarchy, ("store_id",))
    expected = pd.Series(units[:, 0]).groupby(hierarchy["store_id"]).sum()
    np.testing.assert_allclose((matrix @ units)[:, 0], expected.loc[groups["store_id"]].to_numpy())


def test_point_metrics():
    metrics = point_metrics(np.array([[1.0, 2.0]]), np.array([[2.0, 0.0]]))
    assert metrics == {"rmse": pytest.approx(np.sqrt(2.5)), "mae": 1.5, "bias": -0.5}


def test_level_12_weights_reproduce_the_official_m5_ratios(real_subset):
    sales = pd.read_csv(real_subset / "sales_train_validation.csv")
    calendar = pd.read_csv(real_subset / "calendar.csv")
    prices = pd.read_csv(real_subset / "sell_prices.csv")
    days = [f"d_{k}" for k in range(1, 1914)]
    weeks = calendar.set_index("d").loc[days, "wm_yr_wk"].to_numpy()
    price_table = prices.pivot_table(index=["store_id", "item_id"], columns="wm_yr_wk", values="sell_price")
    daily_prices = np.stack(
        [
            price_table.loc[(s, i)].reindex(weeks).to_numpy()
            for s, i in zip(sales["store_id"], sales["item_id"], strict=True)
        ]
    )
    actual = pd.read_csv(real_subset.parent / "sales_test_validation_d1914-1941.csv").set_index(["item_id", "store_id"])
    actual = actual.loc[list(zip(sales["item_id"], sales["store_id"], strict=True))].filter(like="d_").to_numpy(float)

    result = wrmsse(sales, sales[days].to_numpy(float), daily_prices, actual, np.zeros_like(actual))

    ours = result.series.query("level == 12").set_index(["item_id", "store_id"])["weight"]
    official = pd.read_csv(real_subset.parent / "weights_validation.csv").query("Level_id == 'Level12'")
    official = official.set_index(["Agg_Level_1", "Agg_Level_2"])["Weight"].loc[ours.index]
    # The official weights are rounded to three significant digits.
    np.testing.assert_allclose(ours / ours.sum(), official / official.sum(), rtol=0.01)


@pytest.mark.parametrize("store_major", [True, False], ids=["store-major", "bottom-level-in-key-order"])
def test_the_window_scorer_scores_as_wrmsse_and_mean_rmsse_do(store_major):
    from m5_assets.metrics import WindowScorer, mean_bottom_rmsse, wrmsse_of_each

    rng = np.random.default_rng(11)
    n = 12
    # In key order the bottom level's aggregation is the identity, which the scorer skips.
    item, store = (lambda i: i % 4, lambda i: i // 4) if store_major else (lambda i: i // 3, lambda i: i % 3)
    hierarchy = pd.DataFrame(
        {
            "item_id": [f"FOODS_1_{item(i):03d}" for i in range(n)],
            "dept_id": "FOODS_1",
            "cat_id": "FOODS",
            "store_id": [f"CA_{store(i) + 1}" for i in range(n)],
            "state_id": "CA",
        }
    )
    history = rng.poisson(2.0, (n, 90)).astype(float)
    history[0] = 0.0  # never sold: no scale, no weight
    prices = np.where(rng.random((n, 90)) < 0.9, 2.5, np.nan)
    actual = rng.poisson(2.0, (n, 28)).astype(float)
    scorer = WindowScorer(hierarchy, history, prices, actual)
    for forecast in (actual + rng.normal(0, 1, actual.shape), np.full(actual.shape, 2.0)):
        reference = wrmsse_of_each(hierarchy, history, prices, actual, {"f": forecast})["f"]
        total, mean_rmsse = scorer.score(forecast)
        assert total == pytest.approx(reference.total, rel=1e-12)
        assert mean_rmsse == pytest.approx(mean_bottom_rmsse(reference), rel=1e-12)
