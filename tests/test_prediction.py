import datetime as dt

import numpy as np
from forecasting import QUICK_PARAMS

from m5_assets import tables
from m5_assets.model import prediction
from m5_assets.model.matrix import read_rows
from m5_assets.model.training import train


def test_a_column_major_matrix_predicts_what_the_same_rows_in_row_order_predict(built):
    """Feature rows are read into a column-major matrix (``model.matrix``); the booster must say
    the same of them as of a row-major copy, to the bit."""
    features = tables.FEATURES.files(built["tiny"])
    cutoff = dt.date(2016, 4, 1)
    booster = train(features, cutoff, QUICK_PARAMS, refit=False).booster
    rows = read_rows(
        features, cutoff, cutoff + dt.timedelta(days=28), vocabulary=booster.pandas_categorical, labelled=False
    )
    assert rows.matrix.flags.f_contiguous and not rows.matrix.flags.c_contiguous
    np.testing.assert_array_equal(
        prediction.predict(booster, rows.matrix), prediction.predict(booster, np.ascontiguousarray(rows.matrix))
    )
