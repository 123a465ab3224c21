import datetime as dt
import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from forecasting import QUICK, feature_rows, issue, train

from m5_assets import reader, tables, warehouse
from m5_assets.monitoring.drift import DRIFT_FEATURES, Thresholds, feature_drift, ks, psi

REFERENCE = (dt.date(2015, 5, 1), dt.date(2016, 4, 1))
DAY = dt.date(2016, 5, 1)
CURRENT = (DAY - dt.timedelta(days=28), DAY)


def test_psi_and_ks_on_a_hand_computed_flag():
    reference = np.array([0] * 50 + [1] * 50)
    current = np.array([0] * 80 + [1] * 20)
    # Shares 0.5/0.5 against 0.8/0.2: 0.3 ln(0.8/0.5) + (-0.3) ln(0.2/0.5); the CDFs differ by 0.3 at 0.
    assert psi(reference, current) == pytest.approx(0.3 * math.log(1.6) + 0.3 * math.log(2.5))
    assert ks(reference, current) == pytest.approx(0.3)
    assert psi(reference, reference) == 0.0 and ks(reference, reference) == 0.0


def test_ks_equals_the_largest_cdf_gap_over_every_point_of_both_samples():
    rng = np.random.default_rng(3)
    for _ in range(200):
        a = rng.integers(0, 6, rng.integers(1, 40)).astype(float) + (rng.normal(size=1) if rng.random() < 0.5 else 0)
        b = rng.integers(0, 8, rng.integers(1, 40)).astype(float)
        points = np.concatenate([a, b])
        cdf_a = np.searchsorted(np.sort(a), points, side="right") / len(a)
        cdf_b = np.searchsorted(np.sort(b), points, side="right") / len(b)
        assert ks(a, b) == pytest.approx(np.max(np.abs(cdf_a - cdf_b)))


def test_a_value_the_reference_never_had_gets_a_bin_of_its_own():
    never_on, now_on = np.zeros(100), np.ones(100)
    assert psi(never_on, now_on) > 10 and ks(never_on, now_on) == 1.0


def test_missing_values_are_left_out_and_an_empty_window_has_no_score():
    assert psi(np.array([1.0, 2.0, np.nan]), np.array([1.0, 2.0])) == pytest.approx(0.0)
    assert math.isnan(psi(np.array([np.nan]), np.array([1.0]))) and math.isnan(ks(np.array([1.0]), np.array([])))


@pytest.mark.parametrize(
    ("value", "status"),
    [(0.05, "ok"), (0.1, "ok"), (0.15, "warn"), (0.25, "warn"), (0.3, "drift"), (float("nan"), "ok")],
)
def test_thresholds(value, status):
    assert Thresholds(0.1, 0.25).status(value) == status


def _features_with(path, built, change=lambda table: table):
    """The small data's feature store, changed by ``change``, written to ``path``."""
    change(feature_rows(built["small"])).to_parquet(path, index=False)
    return path


def test_a_price_shifted_on_purpose_drifts_and_the_same_feature_unshifted_does_not(tmp_path, built):
    con = warehouse.connect()
    before = feature_drift(con, _features_with(tmp_path / "same.parquet", built), REFERENCE, CURRENT).set_index(
        "feature"
    )

    def shift_price(table):
        inside = (table["date"] >= CURRENT[0]) & (table["date"] < CURRENT[1])
        return table.assign(sell_price=table["sell_price"].where(~inside, table["sell_price"] * 1.6))

    after = feature_drift(
        con, _features_with(tmp_path / "shifted.parquet", built, shift_price), REFERENCE, CURRENT
    ).set_index("feature")
    assert before.loc["sell_price", "status"] == "ok"
    assert after.loc["sell_price", "status"] == "drift" and after.loc["sell_price", "psi"] > 0.25
    # Only that feature moved.
    others = after.index.drop("sell_price")
    pd.testing.assert_series_equal(after.loc[others, "psi"], before.loc[others, "psi"])
    assert set(after.index) == {f.name for f in DRIFT_FEATURES} and not {"item_id", "day_of_week"} & set(after.index)


def test_event_features_are_measured_but_never_flagged(tmp_path, built):
    con = warehouse.connect()

    def no_events(table):
        inside = (table["date"] >= CURRENT[0]) & (table["date"] < CURRENT[1])
        return table.assign(
            has_event=table["has_event"].where(~inside, 0), event_type_code=table["event_type_code"].where(~inside, 0)
        )

    drift = feature_drift(
        con, _features_with(tmp_path / "quiet.parquet", built, no_events), REFERENCE, CURRENT
    ).set_index("feature")
    events = [f.name for f in DRIFT_FEATURES if f.family == "events"]
    assert events and (drift.loc[events, "status"] == "calendar").all()
    assert drift.loc["has_event", "psi"] > 0.25  # a month without events: large, and by construction


def test_drift_for_a_day_reads_nothing_dated_on_or_after_it(tmp_path, built):
    con = warehouse.connect()
    honest = feature_drift(con, _features_with(tmp_path / "honest.parquet", built), REFERENCE, CURRENT)

    def change_the_future(table):
        later = table["date"] >= DAY
        return table.assign(**{f.name: table[f.name].where(~later, table[f.name] * 10 + 7) for f in DRIFT_FEATURES})

    changed = feature_drift(
        con, _features_with(tmp_path / "changed.parquet", built, change_the_future), REFERENCE, CURRENT
    )
    pd.testing.assert_frame_equal(changed, honest)


def test_feature_drift_is_issued_with_each_forecast_partition_with_its_own_metadata_and_check(model_data):
    train(model_data, "2016-05-01", QUICK)
    result = issue(model_data, "2016-05-02", "2016-05-03")
    root = model_data / "warehouse"
    assert reader.partition_days(root, tables.FEATURE_DRIFT) == [dt.date(2016, 5, 2), dt.date(2016, 5, 3)]
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "feature_drift"]
    assert len(events) == 2
    for event in events:
        shown = {k: v.value for k, v in event.materialization.metadata.items()}
        held = pq.read_table(tables.FEATURE_DRIFT.path(root, event.partition)).to_pandas()
        assert shown["dagster/row_count"] == len(held) == len(DRIFT_FEATURES)
        assert shown["max_psi"] == round(held.loc[held["status"] != "calendar", "psi"].max(), 4)
        assert shown["features_drifted"] == (held["status"] == "drift").sum()
        assert (held["reference_end"] == dt.date(2016, 5, 1)).all() and (held["model_version"] == "1").all()
        # The reference is the model's validation window (its 28 days before the cutoff).
        assert (held["reference_start"] == dt.date(2016, 4, 3)).all()
        assert shown["max_score"] == round(held.loc[held["status"] != "calendar", "score"].max(), 4)
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "features_stable"]
    flagged = pd.concat(
        [reader.read_partition(root, tables.FEATURE_DRIFT, d) for d in (dt.date(2016, 5, 2), dt.date(2016, 5, 3))]
    )
    flagged = flagged[flagged["status"].isin(["warn", "drift"])]
    assert check.passed == flagged.empty
    for name in flagged["feature"]:
        assert name in check.description


def test_null_feature_values_are_left_out_not_read_as_numbers(tmp_path, built):
    def blank_half(table):
        inside = (table["date"] >= CURRENT[0]) & (table["date"] < CURRENT[1]) & (table.index % 2 == 0)
        return table.assign(roll_mean_7=table["roll_mean_7"].where(~inside))

    path = _features_with(tmp_path / "blanks.parquet", built, blank_half)
    drift = feature_drift(warehouse.connect(), path, REFERENCE, CURRENT).set_index("feature")
    held = pd.read_parquet(path, columns=["date", "sell_price", "roll_mean_7"])
    current = held[(held["date"] >= CURRENT[0]) & (held["date"] < CURRENT[1]) & held["sell_price"].notna()]
    assert drift.loc["roll_mean_7", "current_rows"] == current["roll_mean_7"].notna().sum() < len(current)
    # Half the values gone at random: the shape of what is left has not moved.
    assert drift.loc["roll_mean_7", "status"] == "ok"


def test_the_drift_of_a_forecast_date_reads_only_its_forecast_rows_and_the_models_validation_window(model_data):
    """The forecast issued on D reads the rows dated D .. D+27 (built from sales before D); the
    reference is the serving model's validation window. Nothing else may change the table."""
    train(model_data, "2016-05-01", QUICK)
    day, root = dt.date(2016, 5, 2), model_data / "warehouse"
    issue(model_data, day.isoformat())
    honest = reader.read_partition(root, tables.FEATURE_DRIFT, day)
    for path in tables.FEATURES.files(root).paths:  # the published store files, changed in place
        table = pd.read_parquet(path)
        dates = pd.to_datetime(table["date"])
        read = dates.between("2016-04-03", "2016-04-30") | dates.between("2016-05-02", "2016-05-29")
        changed = {f.name: table[f.name].where(read, table[f.name] * 10 + 7) for f in DRIFT_FEATURES}
        table.assign(**changed).to_parquet(path, index=False)

    issue(model_data, day.isoformat())

    pd.testing.assert_frame_equal(reader.read_partition(root, tables.FEATURE_DRIFT, day), honest)
