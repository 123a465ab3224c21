import datetime as dt

import numpy as np
import pandas as pd

from m5_assets import tables, warehouse
from m5_assets.features import build
from m5_assets.features.catalog import FEATURE_NAMES
from m5_assets.model.matrix import CATEGORICAL, fill_matrix, read_rows, vocabulary_of
from m5_assets.model.training import TrainingParams, train

QUICK = TrainingParams(learning_rate=0.1, max_rounds=60, early_stopping_rounds=10, train_days=120)
CUTOFF = dt.date(2016, 3, 1)


def _features(built):
    return tables.FEATURES.files(built["tiny"])


def test_matrix_holds_every_value_as_float32_and_categories_as_their_sorted_index(built):
    table = _features(built).read(filters=[("date", "=", dt.date(2016, 1, 5))])
    vocabulary = vocabulary_of(table)
    matrix = fill_matrix(table, vocabulary)
    assert matrix.dtype == np.float32 and matrix.shape == (table.num_rows, len(FEATURE_NAMES))
    for name, values in zip(CATEGORICAL, vocabulary, strict=True):
        assert values == sorted(values)
        codes = matrix[:, FEATURE_NAMES.index(name)].astype(int)
        assert [values[c] for c in codes] == [str(v) for v in table.column(name).to_pylist()]
    price = table.column("sell_price").to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(matrix[:, FEATURE_NAMES.index("sell_price")], price.astype(np.float32))


def test_a_category_keeps_its_code_when_other_values_are_absent(built):
    table = _features(built).read(filters=[("date", "=", dt.date(2016, 1, 5))])
    vocabulary = vocabulary_of(table)
    store = table.column("store_id").to_pylist()
    last_store = table.filter(np.array([s == vocabulary[CATEGORICAL.index("store_id")][-1] for s in store]))
    codes = fill_matrix(last_store, vocabulary)[:, FEATURE_NAMES.index("store_id")]
    assert set(codes) == {len(vocabulary[CATEGORICAL.index("store_id")]) - 1}
    unknown = fill_matrix(
        last_store, [v if n != "store_id" else ["OTHER"] for n, v in zip(CATEGORICAL, vocabulary, strict=True)]
    )
    assert np.isnan(unknown[:, FEATURE_NAMES.index("store_id")]).all()


def test_model_predicts_the_same_from_its_matrix_and_from_a_pandas_frame(built):
    model = train(_features(built), CUTOFF, QUICK)
    assert model.booster.pandas_categorical == vocabulary_of(_features(built).read(columns=list(CATEGORICAL)))
    frame = (
        _features(built)
        .read(filters=[("date", ">=", CUTOFF - dt.timedelta(days=28)), ("date", "<", CUTOFF)])
        .to_pandas()
    )
    frame = frame[frame["sell_price"].notna() & (frame["stocked_out"] == 0)]
    # In the order read_rows gives: series, then day.
    frame = frame.assign(key=frame["id"].astype(str)).sort_values(["key", "date"], kind="stable")
    from_frame = model.booster.predict(frame[list(FEATURE_NAMES)])
    rows = read_rows(
        _features(built), CUTOFF - dt.timedelta(days=28), CUTOFF, vocabulary=model.booster.pandas_categorical
    )
    np.testing.assert_allclose(model.booster.predict(rows.matrix), from_frame, rtol=1e-6)


def test_late_rows_come_last_in_series_and_day_order(built):
    start, split = CUTOFF - dt.timedelta(days=60), CUTOFF - dt.timedelta(days=28)
    rows = read_rows(_features(built), start, CUTOFF, last_from=split)
    dates = rows.keys["date"].to_numpy()
    n_early = int((dates < split).sum())
    assert (dates[:n_early] < split).all() and (dates[n_early:] >= split).all()
    plain = read_rows(_features(built), start, CUTOFF)
    early = plain.keys["date"].to_numpy() < split
    np.testing.assert_array_equal(rows.matrix[:n_early], plain.matrix[early])
    np.testing.assert_array_equal(rows.label[n_early:], plain.label[~early])


def test_training_reads_the_one_file_stores_rows_in_its_order_from_the_store_files(built, tmp_path):
    """LightGBM's result depends on the row order: the store files must give the rows in the order
    the one-file store (series, then day) gave them, validation days last."""
    root = built["small"]
    one_file = tmp_path / "features" / "data.parquet"
    inputs = (tables.SALES_LONG.path(root), tables.RAW_CALENDAR.path(root), tables.RAW_SELL_PRICES.path(root))
    build.build_features(warehouse.connect(), *inputs, one_file, storage=warehouse.Warehouse(tmp_path))
    start, split = CUTOFF - dt.timedelta(days=400), CUTOFF - dt.timedelta(days=28)
    by_store = tables.FEATURES.files(root)
    assert len(by_store.paths) == 10
    for last_from in (None, split):
        expected, got = (read_rows(f, start, CUTOFF, last_from=last_from) for f in (one_file, by_store))
        pd.testing.assert_frame_equal(got.keys.astype(str), expected.keys.astype(str))
        np.testing.assert_array_equal(got.label, expected.label)
        np.testing.assert_array_equal(got.matrix, expected.matrix)
        assert got.vocabulary == expected.vocabulary


def test_one_stores_file_is_read_in_series_and_day_order_too(built):
    # A store of the small data: 115 series, row groups of 560 days, so its file is not in id order.
    (store, *_) = tables.FEATURES.files(built["small"]).stores
    rows = read_rows(tables.FEATURES.files(built["small"]), CUTOFF - dt.timedelta(days=900), CUTOFF, stores=[store])
    keys = rows.keys.assign(id=rows.keys["id"].astype(str))
    assert keys["id"].str.contains(store).all()
    pd.testing.assert_frame_equal(keys, keys.sort_values(["id", "date"], ignore_index=True))


def test_reading_rows_frees_each_feature_column_once_it_is_in_the_matrix(built, monkeypatch):
    """The Arrow table and the float32 matrix are each 3.3 GiB for a full-scale training window:
    holding both was the read's peak. Arrow's live bytes must fall as the matrix fills."""
    import pyarrow as pa

    from m5_assets.model import matrix as module

    live = []
    copy = module._column_values

    def watched(column):
        live.append(pa.total_allocated_bytes())
        return copy(column)

    monkeypatch.setattr(module, "_column_values", watched)
    rows = read_rows(tables.FEATURES.files(built["small"]), dt.date(2015, 6, 1), CUTOFF)
    assert len(live) > 20 and rows.matrix.nbytes > 10_000_000
    assert live[-1] < 0.25 * live[0], f"Arrow held {live[0]:,} bytes at the first column and {live[-1]:,} at the last"
