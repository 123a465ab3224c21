import datetime as dt

import numpy as np
import pandas as pd
import pytest

from m5_assets.model.evaluation import forecast_matrix, series_rows

SERIES = pd.Series(["B_1", "A_1", "C_1"])


@pytest.mark.parametrize("categorical", [True, False], ids=["categorical", "text"])
def test_forecasts_land_in_their_series_row_and_day_column(categorical):
    ids = pd.Series(["C_1", "B_1", "C_1", "A_1"])
    if categorical:
        # Categories in another order than the series, and one the rows do not use.
        ids = ids.astype(pd.CategoricalDtype(["Z_9", "C_1", "A_1", "B_1"]))
    predictions = pd.DataFrame(
        {
            "id": ids,
            "date": [dt.date(2016, 4, 2), dt.date(2016, 4, 1), dt.date(2016, 4, 1), dt.date(2016, 4, 3)],
            "prediction": [1.0, 2.0, 3.0, 4.0],
        }
    )
    inputs = type("Inputs", (), {"series": pd.DataFrame({"id": SERIES})})()
    matrix = forecast_matrix(inputs, predictions, dt.date(2016, 4, 1), 3)
    np.testing.assert_array_equal(matrix, [[2.0, 0, 0], [0, 0, 4.0], [3.0, 1.0, 0]])


@pytest.mark.parametrize("categorical", [True, False], ids=["categorical", "text"])
def test_an_id_outside_the_series_is_named(categorical):
    ids = pd.Series(["A_1", "Q_7"])
    with pytest.raises(KeyError, match="Q_7"):
        series_rows(SERIES, ids.astype("category") if categorical else ids)
    with pytest.raises(KeyError, match="nan"):
        series_rows(SERIES, pd.Series(["A_1", None], dtype="category"))
