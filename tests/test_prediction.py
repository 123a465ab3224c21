import datetime as dt
import logging

import numpy as np
import pytest
from forecasting import QUICK_PARAMS

from m5_assets import tables
from m5_assets.model import prediction
from m5_assets.model.matrix import CATEGORICAL_INDEX, read_rows
from m5_assets.model.training import train


@pytest.fixture(scope="module")
def model_and_rows(built):
    features = tables.FEATURES.files(built["small"])
    cutoff = dt.date(2016, 4, 1)
    model = train(features, cutoff, QUICK_PARAMS, refit=False)
    rows = read_rows(
        features, cutoff, cutoff + dt.timedelta(days=28), vocabulary=model.booster.pandas_categorical, labelled=False
    )
    return model.booster, rows.matrix


def test_compiled_trees_predict_what_lightgbm_predicts_and_compile_once_per_machine(
    model_and_rows, tmp_path, monkeypatch, caplog
):
    booster, matrix = model_and_rows
    assert any(booster.feature_importance("split")[list(CATEGORICAL_INDEX)]), "no categorical split to compare"
    monkeypatch.setenv("M5_COMPILED_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(prediction, "_loaded", {})
    caplog.set_level(logging.INFO, logger="m5_assets.progress")

    compiled = prediction.predict(booster, matrix, compiled=True)

    np.testing.assert_allclose(compiled, booster.predict(matrix), rtol=1e-9, atol=1e-12)
    (cached,) = tmp_path.glob("*.o")
    assert sum("compiling the model's" in r.message for r in caplog.records) == 1
    # Another process (a fresh in-process cache) loads the compiled trees instead of compiling.
    monkeypatch.setattr(prediction, "_loaded", {})
    np.testing.assert_array_equal(prediction.predict(booster, matrix, compiled=True), compiled)
    assert sum("compiling the model's" in r.message for r in caplog.records) == 1
    assert list(tmp_path.iterdir()) == [cached]  # nothing left of the compile's scratch files


def test_a_small_input_is_predicted_by_lightgbm_without_compiling(model_and_rows, monkeypatch):
    booster, matrix = model_and_rows
    assert len(matrix) * booster.num_trees() < prediction.COMPILE_ABOVE

    def refuse(_booster):
        raise AssertionError("compiled for a small input")

    monkeypatch.setattr(prediction, "compiled_model", refuse)
    np.testing.assert_array_equal(prediction.predict(booster, matrix), booster.predict(matrix))
