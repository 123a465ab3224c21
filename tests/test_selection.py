"""How a model issues is chosen per volume band over several out-of-sample validation windows."""

import datetime as dt

import numpy as np
import pandas as pd

from m5_assets.features.build import FeatureInputs
from m5_assets.features.catalog import HORIZON
from m5_assets.model.forecaster import IssueRule
from m5_assets.model.selection import (
    BANDS,
    MIN_BAND_SERIES,
    WINDOWS,
    ValidationForecast,
    band_groups,
    choose_issue_rule,
    served_windows,
    validate,
)

START = dt.date(2015, 1, 1)
DAYS = 200


def _inputs(units: np.ndarray) -> FeatureInputs:
    n = len(units)
    items = [f"FOODS_1_{i:03d}" for i in range(n)]
    series = pd.DataFrame(
        {
            "id": [f"{i}_CA_1_evaluation" for i in items],
            "item_id": items,
            "dept_id": "FOODS_1",
            "cat_id": "FOODS",
            "store_id": "CA_1",
            "state_id": "CA",
            "state_idx": 0,
        }
    )
    return FeatureInputs(
        series=series,
        dates=pd.date_range(START, periods=DAYS),
        n_sales_days=DAYS,
        units=units,
        price=np.ones_like(units),
        snap_by_state=np.zeros((1, DAYS)),
        day_features={},
    )


def _window(inputs: FeatureInputs, cutoff_column: int, model: np.ndarray) -> ValidationForecast:
    """The validation forecast of the cutoff at ``cutoff_column``: ``model`` (series x 28) as the
    model's units, the mean of the 28 days before the window as both partners."""
    first = cutoff_column - HORIZON
    mean = inputs.units[:, first - HORIZON : first].mean(axis=1)
    dates = inputs.dates[first:cutoff_column]
    frame = pd.DataFrame(
        {
            "id": np.repeat(inputs.series["id"].to_numpy(), HORIZON),
            "date": np.tile(dates.date, len(mean)),
            "prediction": model.ravel(),
            "level": np.repeat(mean, HORIZON),
            "mean_28": np.repeat(mean, HORIZON),
        }
    )
    return ValidationForecast(START + dt.timedelta(days=cutoff_column), frame)


def test_busy_series_issue_the_model_and_slow_ones_their_mean_when_the_model_chases_their_noise():
    rng = np.random.default_rng(7)
    weekday = (np.arange(DAYS) % 7 == 5).astype(float)
    n = MIN_BAND_SERIES  # each band holds enough series for its own blend
    busy = np.tile(10 + 8 * weekday, (n, 1))  # a weekly shape only a model sees: the mean misses it
    slow = rng.poisson(0.2, (n, DAYS)).astype(float)
    inputs = _inputs(np.vstack([busy, slow]))
    cutoffs = [DAYS - 2 * HORIZON, DAYS - HORIZON, DAYS]
    windows = []
    for c in cutoffs:
        actual = inputs.units[:, c - HORIZON : c]
        # Exact on the busy series; on the slow ones, noise as large as the series.
        model = np.vstack([actual[:n], rng.exponential(0.6, (n, HORIZON))])
        windows.append(_window(inputs, c, model))
    choice = choose_issue_rule(inputs, windows[::-1])
    weights = {row.band: row.model_weight for row in choice.bands.itertuples()}
    slow_band, busy_band = (
        int(np.searchsorted(BANDS, 0.2, side="right")),
        int(np.searchsorted(BANDS, 11.0, side="right")),
    )
    assert weights[busy_band] == 1.0
    assert weights[slow_band] <= 0.2
    assert choice.evidence.loc["chosen", "criterion"] < choice.evidence.loc["model alone", "criterion"]
    assert f"over {WINDOWS} validation window(s)" in choice.rule.chosen_because


def test_bands_with_too_few_series_share_a_blend_with_their_neighbours():
    assert band_groups([40, 10, 25, 50], 30) == [[0], [1, 2], [3]]
    assert band_groups([40, 50, 10, 5], 30) == [[0], [1, 2, 3]]  # a short last group joins the one before
    assert band_groups([1, 4, 3, 2], 30) == [[0, 1, 2, 3]]
    # The busy and slow series of the test above, too few for a blend each: they get one.
    rng = np.random.default_rng(7)
    weekday = (np.arange(DAYS) % 7 == 5).astype(float)
    inputs = _inputs(np.vstack([np.tile(10 + 8 * weekday, (5, 1)), rng.poisson(0.2, (5, DAYS)).astype(float)]))
    windows = []
    for c in [DAYS - 2 * HORIZON, DAYS - HORIZON, DAYS]:
        actual = inputs.units[:, c - HORIZON : c]
        windows.append(_window(inputs, c, np.vstack([actual[:5], rng.exponential(0.6, (5, HORIZON))])))
    choice = choose_issue_rule(inputs, windows[::-1])
    assert len({(s.model_weight, s.partner) for s in choice.rule.segments}) == 1


def test_the_rule_is_chosen_on_the_windows_earlier_models_served_up_to_the_cutoff_or_else_on_its_own():
    rng = np.random.default_rng(3)
    inputs = _inputs(rng.poisson(3.0, (6, DAYS)).astype(float))
    columns = [DAYS - k * HORIZON for k in range(5)]  # the newest cutoff first
    served = [_window(inputs, c, inputs.units[:, c - HORIZON : c] + 1.0) for c in columns]
    own = _window(inputs, columns[1], inputs.units[:, columns[1] - HORIZON : columns[1]])
    # served[0] ends after the cutoff: a later window, never read; at most WINDOWS of the rest.
    validated = validate(inputs, own.cutoff, own.frame, served=served[::-1])
    assert [w.cutoff for w in validated.windows] == [s.cutoff for s in served[1 : 1 + WINDOWS]]
    assert all(w.frame is not own.frame for w in validated.windows)
    # Without them a rule is still chosen, on the model's own window, and says why that is weaker.
    alone = validate(inputs, own.cutoff, own.frame)
    assert [w.frame for w in alone.windows] == [own.frame]
    assert alone.rule.chosen_because.startswith("no earlier model's forecast of these windows")
    assert isinstance(alone.rule, IssueRule) and len(alone.rule.segments) == len(BANDS)
    # A model of a level refreshes its units to the origin's before the blend; a model of units cannot.
    assert alone.rule.refresh and not validate(inputs, own.cutoff, own.frame, relative=False).rule.refresh


def test_each_cutoff_is_judged_on_the_windows_the_three_months_before_served():
    assert served_windows(dt.date(2016, 4, 1)) == [
        (dt.date(2016, 3, 1), dt.date(2016, 4, 1)),
        (dt.date(2016, 2, 1), dt.date(2016, 3, 1)),
        (dt.date(2016, 1, 1), dt.date(2016, 2, 1)),
    ]
