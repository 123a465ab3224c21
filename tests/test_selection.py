"""How a model issues is chosen per volume band over several out-of-sample validation windows."""

import datetime as dt

import numpy as np
import pandas as pd

from m5_assets.features.build import FeatureInputs
from m5_assets.features.catalog import HORIZON
from m5_assets.model.forecaster import IssueRule
from m5_assets.model.selection import BANDS, WINDOWS, ValidationForecast, choose_issue_rule, validate

START = dt.date(2015, 1, 1)
DAYS = 200


def _inputs(units: np.ndarray) -> FeatureInputs:
    n = len(units)
    items = [f"FOODS_1_{i:03d}" for i in range(n)]
    series = pd.DataFrame({"id": [f"{i}_CA_1_evaluation" for i in items], "item_id": items, "dept_id": "FOODS_1",
                           "cat_id": "FOODS", "store_id": "CA_1", "state_id": "CA", "state_idx": 0})  # fmt: skip
    return FeatureInputs(series=series, dates=pd.date_range(START, periods=DAYS), n_sales_days=DAYS, units=units,
                         price=np.ones_like(units), snap_by_state=np.zeros((1, DAYS)), day_features={})  # fmt: skip


def _window(inputs: FeatureInputs, cutoff_column: int, model: np.ndarray) -> ValidationForecast:
    """The validation forecast of the cutoff at ``cutoff_column``: ``model`` (series x 28) as the
    model's units, the mean of the 28 days before the window as both partners."""
    first = cutoff_column - HORIZON
    mean = inputs.units[:, first - HORIZON : first].mean(axis=1)
    dates = inputs.dates[first:cutoff_column]
    frame = pd.DataFrame({
        "id": np.repeat(inputs.series["id"].to_numpy(), HORIZON), "date": np.tile(dates.date, len(mean)),
        "prediction": model.ravel(), "level": np.repeat(mean, HORIZON), "mean_28": np.repeat(mean, HORIZON),
    })  # fmt: skip
    return ValidationForecast(START + dt.timedelta(days=cutoff_column), frame)


def test_busy_series_issue_the_model_and_slow_ones_their_mean_when_the_model_chases_their_noise():
    rng = np.random.default_rng(7)
    weekday = (np.arange(DAYS) % 7 == 5).astype(float)
    busy = np.tile(10 + 8 * weekday, (10, 1))  # a weekly shape only a model sees: the mean misses it
    slow = rng.poisson(0.2, (10, DAYS)).astype(float)
    inputs = _inputs(np.vstack([busy, slow]))
    cutoffs = [DAYS - 2 * HORIZON, DAYS - HORIZON, DAYS]
    windows = []
    for c in cutoffs:
        actual = inputs.units[:, c - HORIZON : c]
        # Exact on the busy series; on the slow ones, noise as large as the series.
        model = np.vstack([actual[:10], rng.exponential(0.6, (10, HORIZON))])
        windows.append(_window(inputs, c, model))
    choice = choose_issue_rule(inputs, windows[::-1])
    weights = {row.band: row.model_weight for row in choice.bands.itertuples()}
    slow_band, busy_band = int(np.searchsorted(BANDS, 0.2, side="right")), int(np.searchsorted(BANDS, 11.0, side="right"))
    assert weights[busy_band] == 1.0
    assert weights[slow_band] <= 0.2
    assert choice.evidence.loc["chosen", "criterion"] < choice.evidence.loc["model alone", "criterion"]
    assert f"over {WINDOWS} validation window(s)" in choice.rule.chosen_because


def test_the_rule_reads_only_windows_before_the_cutoff_and_at_most_windows_of_them():
    rng = np.random.default_rng(3)
    inputs = _inputs(rng.poisson(3.0, (6, DAYS)).astype(float))
    columns = [DAYS - k * HORIZON for k in range(5)]  # the newest cutoff first
    forecasts = [_window(inputs, c, inputs.units[:, c - HORIZON : c] + 1.0) for c in columns]
    own, older = forecasts[1], [forecasts[0], *forecasts[2:]]  # forecasts[0] is after own's cutoff
    validated = validate(inputs, own.cutoff, own.frame, earlier=older)
    assert [w.cutoff for w in validated.windows] == [own.cutoff, forecasts[2].cutoff, forecasts[3].cutoff]
    # Without stored windows a rule is still chosen, on the model's own one, and says so.
    alone = validate(inputs, own.cutoff, own.frame)
    assert len(alone.windows) == 1 and "over 1 validation window(s)" in alone.rule.chosen_because
    assert isinstance(alone.rule, IssueRule) and len(alone.rule.segments) == len(BANDS)
