"""The arrays the long-table and feature builders share: packed nulls, shared dictionaries and
prices held by week must give exactly what the plain constructions give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from m5_assets.grid import DailyPrices, Dictionary, arrow_array


@pytest.mark.parametrize("length", [1, 7, 8, 9, 1000])
def test_arrow_array_makes_nan_null_as_pyarrow_does(length):
    rng = np.random.default_rng(length)
    values = rng.random(length).astype(np.float32)
    values[rng.random(length) < 0.3] = np.nan
    packed = arrow_array(values)
    assert packed.equals(pa.array(values, from_pandas=True))
    assert packed.null_count == int(np.isnan(values).sum())


def test_arrow_array_takes_an_explicit_mask_for_integers_and_keeps_their_width():
    values = np.array([3, 0, 5, 0], dtype=np.int16)
    packed = arrow_array(values, np.array([False, True, False, True]))
    assert packed.type == pa.int16() and packed.to_pylist() == [3, None, 5, None]
    assert arrow_array(values).null_count == 0 and arrow_array(values).type == pa.int16()


def test_a_dictionary_is_shared_by_blocks_and_keeps_nulls():
    column = pd.Series(["b", None, "a", "b"])
    dictionary = Dictionary.of(column)
    first, second = dictionary.array(dictionary.codes[:2]), dictionary.array(dictionary.codes[2:])
    assert first.dictionary.equals(second.dictionary)
    assert first.to_pylist() + second.to_pylist() == ["b", None, "a", "b"]


def test_daily_prices_index_like_the_matrix_they_stand_for():
    by_week = np.array([[1.0, 2.0, np.nan], [4.0, np.nan, 6.0]])
    week_of_day = np.array([0, 0, 1, 1, 1, 2, 2])
    matrix = by_week[:, week_of_day]
    prices = DailyPrices(by_week, week_of_day)
    assert prices.shape == matrix.shape
    for key in (slice(None), np.array([1]), (slice(None), slice(2, 6)), (np.array([0, 1]), slice(None, 3))):
        np.testing.assert_array_equal(prices[key], matrix[key])
