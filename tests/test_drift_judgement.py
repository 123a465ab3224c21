"""How feature drift is judged (issue 23): against the PSI a comparison shows with no change at its
sample size, per department as well as pooled, weighted by the serving model's importances."""

import datetime as dt

import numpy as np
import pytest

from m5_assets.monitoring.drift import (
    DRIFT_FEATURES,
    JUDGED_FEATURES,
    PERMUTATIONS,
    Reference,
    drift_table,
    forecast_rows,
    importance_weights,
    no_change_psi,
    prepare,
    psi,
    swap_draws,
)

DAYS = 28


def _window(levels: dict[str, float], depts: dict[str, str], rng, factor=lambda dept: 1.0) -> dict[str, np.ndarray]:
    """28 days of every drift feature for items with the given levels: a slowly moving 90-day mean
    of sorts (each item near its level, a little noise), times ``factor`` of the item's department."""
    items = np.repeat(list(levels), DAYS)
    dept = np.array([depts[i] for i in items])
    level = np.array([levels[i] for i in items]) * np.array([factor(d) for d in dept])
    values = level * (1 + 0.02 * rng.standard_normal(len(items)))
    dates = np.tile(np.arange(DAYS), len(levels)).astype("datetime64[D]")
    return {"item_id": items, "dept_id": dept, "date": dates, **{f.name: values.copy() for f in DRIFT_FEATURES}}


def _catalogue(n_items: int, n_depts: int, seed: int) -> tuple[dict[str, float], dict[str, str]]:
    rng = np.random.default_rng(seed)
    names = [f"ITEM_{k:04d}" for k in range(n_items)]
    return dict(zip(names, rng.lognormal(0, 1, n_items), strict=True)), {
        n: f"DEPT_{k % n_depts}" for k, n in enumerate(names)
    }


def _moved(levels: dict[str, float], rng, spread: float) -> dict[str, float]:
    """Each item's level a month later: moved by its own few percent, as genuine items move."""
    return {item: level * float(np.exp(spread * rng.standard_normal())) for item, level in levels.items()}


def test_ten_items_that_moved_as_genuine_items_do_have_a_large_psi_but_no_score():
    rng = np.random.default_rng(1)
    levels, depts = _catalogue(10, 4, seed=1)
    reference, current = _window(levels, depts, rng), _window(_moved(levels, rng, 0.3), depts, rng)
    table = drift_table(prepare(reference), current).set_index("feature")
    # A PSI that the old fixed thresholds called drift on every genuine date ...
    assert table.loc["roll_mean_90", "psi"] > 0.25
    # ... is no more than ten items show when nothing changed.
    assert (table.loc[list(JUDGED_FEATURES), "status"] == "ok").all()
    assert (table.loc[list(JUDGED_FEATURES), "no_change_psi"] >= 0.25).all()


def test_the_no_change_psi_shrinks_with_the_number_of_items():
    rng = np.random.default_rng(2)
    found = {}
    for n_items in (10, 1000):
        levels, depts = _catalogue(n_items, 1, seed=n_items)
        reference, current = _window(levels, depts, rng), _window(levels, depts, rng)
        codes = {item: k for k, item in enumerate(levels)}
        ref_items, cur_items = (
            np.array([codes[i] for i in reference["item_id"]]),
            np.array([codes[i] for i in current["item_id"]]),
        )
        prepared = Reference.of(reference["roll_mean_90"])
        swaps = swap_draws(ref_items, cur_items, n_items)
        found[n_items] = no_change_psi(
            prepared, reference["roll_mean_90"], ref_items, current["roll_mean_90"], cur_items, swaps
        )
        # Nothing changed: the observed PSI is within what the swaps show.
        assert psi(reference["roll_mean_90"], current["roll_mean_90"]) <= found[n_items]
    assert found[10] > 10 * found[1000] and found[1000] < 0.05


def test_swaps_trade_only_items_present_in_both_windows_and_are_seeded():
    ref_items, cur_items = np.array([0, 0, 1, 2]), np.array([1, 2, 3])
    swaps = swap_draws(ref_items, cur_items, 4)
    assert swaps.shape == (PERMUTATIONS, 4)
    assert not swaps[:, [0, 3]].any() and swaps[:, [1, 2]].mean() == pytest.approx(0.5, abs=0.1)
    np.testing.assert_array_equal(swaps, swap_draws(ref_items, cur_items, 4))


def test_a_department_tripled_is_judged_on_that_department_when_the_pooled_rows_hide_it():
    rng = np.random.default_rng(3)
    levels, depts = _catalogue(700, 7, seed=3)
    later = _moved(levels, rng, 0.05)
    reference = _window(levels, depts, rng)
    current = _window(later, depts, rng, factor=lambda dept: 3.0 if dept == "DEPT_4" else 1.0)
    table = drift_table(prepare(reference), current).set_index("feature")
    assert (table.loc[list(JUDGED_FEATURES), "status"] == "drift").all()
    assert (table.loc[list(JUDGED_FEATURES), "segment"] == "DEPT_4").all()
    # Healthy: every department moved by its items' few percent only.
    quiet = drift_table(prepare(reference), _window(later, depts, rng)).set_index("feature")
    assert (quiet.loc[list(JUDGED_FEATURES), "status"] == "ok").all()


def test_importance_weights_count_features_used_at_least_as_much_as_the_average_fully():
    gain = dict.fromkeys(JUDGED_FEATURES, 10.0) | {"roll_mean_90": 100.0, "snap": 0.0, "units_lag_364": 5.0}
    weights = importance_weights(gain)
    mean = np.mean(list(gain.values()))
    assert weights["roll_mean_90"] == 1.0 and weights["snap"] == 0.0
    assert weights["units_lag_364"] == pytest.approx(5.0 / mean) and weights["units_lag_28"] == pytest.approx(
        10.0 / mean
    )
    # A version that recorded no importances is judged unweighted.
    assert set(importance_weights({}).values()) == {1.0}


def test_a_feature_the_model_never_uses_is_measured_but_never_flagged():
    rng = np.random.default_rng(4)
    levels, depts = _catalogue(400, 4, seed=4)
    reference = _window(levels, depts, rng)
    current = _window(levels, depts, rng, factor=lambda dept: 3.0)
    gain = dict.fromkeys(JUDGED_FEATURES, 1.0) | {"sell_price": 0.0}
    table = drift_table(prepare(reference), current, gain=gain).set_index("feature")
    assert table.loc["sell_price", "psi"] > 1 and table.loc["sell_price", "status"] == "ok"
    assert table.loc["roll_mean_90", "status"] == "drift"


def test_forecast_rows_are_the_28_days_from_the_forecast_date():
    day = dt.date(2016, 4, 25)
    dates = np.arange(np.datetime64("2016-04-20"), np.datetime64("2016-05-30")).astype("datetime64[D]")
    rows = forecast_rows({"date": dates, "x": np.arange(len(dates))}, day)
    assert rows["date"][0] == np.datetime64("2016-04-25") and rows["date"][-1] == np.datetime64("2016-05-22")
    assert len(rows["x"]) == 28
