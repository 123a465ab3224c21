"""Choose how a model issues, on several out-of-sample validation windows rather than one.

One 28-day window is a single draw: on real_280 the blend it chose swung from all-model to
0.6 x model month by month, and its biases with it. Nor is a model's own validation window a
fair one: early stopping chose its rounds there, and on real_280's backtest the models scored
12 % better on their validation windows than on the forecasts they then issued (seasonal naive:
3 %), so blends chosen there leaned on the model where the 28-day mean did better out of sample.

The rule is therefore chosen on what the previous months' models issued, out of sample, for the
28 days before each of the last ``WINDOWS`` cutoffs (``served_forecast``): the model of the month
before forecasting this cutoff's window, the one of two months before the previous window, and so
on. They are registered already, so no model is fitted for it. Without any (the first months of a
data folder) the model's own window is used, and the rule says so.

It is chosen per volume band of the series' 28-day mean at the origin. On real_280 the model
beats a flat mean on busy series and loses to it on slow ones (mean RMSSE 0.80 vs 0.74 on
intermittent and lumpy series): a slow series' day-to-day shape is noise the model chases. Each
band blends the model with a partner, its demand level or its plain 28-day mean, at a weight
from 0 to 1. The criterion is the mean over windows of WRMSSE (what M5 scores: aggregates and
dollar-weighted) plus the mean RMSSE of the item-store series (what a planner reads per series):
WRMSSE alone would let the slow series' error grow unseen, mean RMSSE alone would flatten the
busy series the aggregates are made of. Bands are set one at a time, twice over, each trying
every weight and partner with the others held; a band of fewer than ``MIN_BAND_SERIES`` series
is set together with its neighbours. The model blended is the model as a new version issues it,
refreshed to the origin's level (``forecaster.new_model_rule``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from m5_assets.features.build import FeatureInputs
from m5_assets.features.catalog import HORIZON
from m5_assets.intervals import Calibration
from m5_assets.metrics import WindowScorer
from m5_assets.model import prediction
from m5_assets.model.evaluation import (
    PURE_MODEL,
    ValidationScores,
    calibrate_pooled,
    forecast_matrix,
    score_validation,
    validation_window,
)
from m5_assets.model.forecaster import (
    BLEND_WEIGHTS,
    LEVEL_PARTNER,
    MEAN_PARTNER,
    IssueRule,
    Partners,
    Segment,
    new_model_rule,
    window_forecast,
)
from m5_assets.model.matrix import read_rows
from m5_assets.table_files import TableSource

# The windows before this cutoff and the two before it, each as the month's model forecast it
# (its booster, its units formed as a new model's are: ``served_forecast``).
WINDOWS = 3
BANDS = (0.5, 1.5, 5.0, float("inf"))  # upper edges of the 28-day-mean bands, units a day
SWEEPS = 2
# A band with fewer series than this shares its blend with its neighbours: a weight chosen on a
# handful of series is their noise (on the 10 genuine series, 1 series in the slowest band, stocked
# out, took that band to all-model and the issued forecast 10 % high).
MIN_BAND_SERIES = 30


@dataclass(frozen=True)
class ValidationForecast:
    """An out-of-sample forecast of the 28 days before ``cutoff``, issued on their first day.

    ``frame``: id, date, prediction (the model's units, as ``new_model_rule`` forms them: refreshed
    to the window's first day's level), level and mean_28 (the partners as of
    the window's first day), one row per series and day, as ``train`` returns it.
    """

    cutoff: dt.date
    frame: pd.DataFrame


def months_before(cutoff: dt.date, n: int) -> list[dt.date]:
    """The ``n`` monthly cutoffs before ``cutoff``, oldest first."""
    out = [cutoff]
    for _ in range(n):
        out.insert(0, (out[0] - dt.timedelta(days=1)).replace(day=1))
    return out[:-1]


def served_windows(cutoff: dt.date) -> list[tuple[dt.date, dt.date]]:
    """(model cutoff, window cutoff) of the windows ``cutoff``'s rule is chosen on, newest first:
    each month's model forecasting the 28 days before the next month's cutoff."""
    months = [*months_before(cutoff, WINDOWS), cutoff]
    return [(months[k - 1], months[k]) for k in range(WINDOWS, 0, -1)]


def served_forecast(features: TableSource, booster: lgb.Booster, relative: bool, cutoff: dt.date) -> ValidationForecast:
    """What ``booster`` (a model trained before the window) forecasts for the 28 days before
    ``cutoff``, issued on their first day: the model's units, formed as a new model's are
    (``new_model_rule``: refreshed, whatever rule that version issued with), and the partners
    of that day; the rule being chosen blends them as the new model's will be."""
    start = cutoff - dt.timedelta(days=HORIZON)
    rows = read_rows(features, start, cutoff, vocabulary=booster.pandas_categorical, labelled=False)
    predicted = prediction.predict(booster, rows.matrix)
    return ValidationForecast(cutoff, window_forecast(rows.keys, rows.matrix, predicted, start, relative))


@dataclass(frozen=True)
class _Window:
    cutoff: dt.date
    scorer: WindowScorer
    model: np.ndarray
    band: np.ndarray  # series x days: each forecast's band index
    # The forecasts sorted by band once, so each of the hundreds of candidate blends a choice
    # scores works on contiguous slices: ``order`` (flat positions, band by band), each band's
    # slice of it, and the model's and partners' values in that order.
    order: np.ndarray
    slices: dict[int, slice]
    model_by_band: np.ndarray
    partners_by_band: dict[str, np.ndarray]


def _matrix(inputs: FeatureInputs, frame: pd.DataFrame, column: str, start: dt.date) -> np.ndarray:
    return forecast_matrix(inputs, frame.assign(prediction=frame[column].to_numpy()), start, HORIZON)


def _window(inputs: FeatureInputs, forecast: ValidationForecast) -> _Window:
    start = forecast.cutoff - dt.timedelta(days=HORIZON)
    history, prices, actual = validation_window(inputs, forecast.cutoff)
    frame = forecast.frame
    partners = _partners(frame)
    band = _matrix(inputs, frame.assign(band=partners.bands(BANDS).astype(np.float64)), "band", start).astype(int)
    model = _matrix(inputs, frame, "prediction", start)
    others = {
        name: _matrix(inputs, frame.assign(p=partners.of(name)), "p", start) for name in (LEVEL_PARTNER, MEAN_PARTNER)
    }
    order = np.argsort(band.ravel(), kind="stable")
    edges = np.searchsorted(band.ravel()[order], np.arange(len(BANDS) + 1))
    return _Window(
        forecast.cutoff,
        WindowScorer(inputs.series, history, prices, actual),
        model,
        band,
        order,
        {b: slice(edges[b], edges[b + 1]) for b in range(len(BANDS))},
        model.ravel()[order],
        {name: values.ravel()[order] for name, values in others.items()},
    )


def _issued(window: _Window, choice: dict[int, tuple[float, str]]) -> np.ndarray:
    by_band = np.zeros(window.model.size)
    for band, (weight, partner) in choice.items():
        part = window.slices[band]
        by_band[part] = weight * window.model_by_band[part] + (1.0 - weight) * window.partners_by_band[partner][part]
    out = np.empty(window.model.size)
    out[window.order] = by_band
    return out.reshape(window.model.shape)


def _criteria(
    inputs: FeatureInputs, windows: list[_Window], candidates: dict[str, dict[int, tuple[float, str]]]
) -> pd.DataFrame:
    """Per candidate: mean WRMSSE, mean RMSSE and their sum over the windows."""
    rows = {name: {"wrmsse": 0.0, "mean_rmsse": 0.0} for name in candidates}
    for w in windows:
        for name, choice in candidates.items():
            total, mean_rmsse = w.scorer.score(_issued(w, choice))
            rows[name]["wrmsse"] += total / len(windows)
            rows[name]["mean_rmsse"] += mean_rmsse / len(windows)
    table = pd.DataFrame(rows).T
    return table.assign(criterion=table["wrmsse"] + table["mean_rmsse"])


def band_groups(counts: list[int], least: int) -> list[list[int]]:
    """Adjacent bands joined, from the slowest up, until each group holds at least ``least``
    series (``counts``: series per band); a short last group joins the one before it."""
    groups, current, held = [], [], 0
    for band, count in enumerate(counts):
        current.append(band)
        held += count
        if held >= least:
            groups.append(current)
            current, held = [], 0
    if current:
        if groups:
            groups[-1] += current
        else:
            groups.append(current)
    return groups


@dataclass(frozen=True)
class Choice:
    rule: IssueRule
    bands: pd.DataFrame  # one row per band: upper edge, series in it, model weight, partner
    evidence: pd.DataFrame  # chosen, model alone, 28-day mean alone: mean wrmsse, mean_rmsse, criterion


def choose_issue_rule(inputs: FeatureInputs, forecasts: list[ValidationForecast], relative: bool = True) -> Choice:
    """The per-band blend with the lowest criterion over ``forecasts``' windows (the model's own
    first), with each band's choice and the figures it was chosen on."""
    windows = [_window(inputs, f) for f in forecasts]
    newest = windows[0]
    counts = [int(np.any(newest.band == b, axis=1).sum()) for b in range(len(BANDS))]
    choice = {band: (1.0, LEVEL_PARTNER) for band in range(len(BANDS))}
    options = [
        (w, p)
        for w in sorted(BLEND_WEIGHTS, reverse=True)
        for p in (LEVEL_PARTNER, MEAN_PARTNER)
        if not (w == 1.0 and p == MEAN_PARTNER)
    ]
    for _ in range(SWEEPS):
        for group in band_groups(counts, MIN_BAND_SERIES):
            candidates = {f"{w}|{p}": choice | {band: (w, p) for band in group} for w, p in options}
            table = _criteria(inputs, windows, candidates)
            # Ordered from all-model down, so a tie keeps the most model.
            best = table.index[int(np.argmin(table["criterion"].to_numpy()))]
            choice = candidates[best]
    references = {
        "chosen": choice,
        "model alone": {b: (1.0, LEVEL_PARTNER) for b in choice},
        "28-day mean alone": {b: (0.0, MEAN_PARTNER) for b in choice},
    }
    summary = _criteria(inputs, windows, references)
    segments = tuple(Segment(BANDS[b], float(w), p) for b, (w, p) in sorted(choice.items()))
    table = pd.DataFrame(
        [
            {"band": b, "upper": BANDS[b], "series": counts[b], "model_weight": w, "partner": p}
            for b, (w, p) in sorted(choice.items())
        ]
    )
    chosen, alone = summary.loc["chosen"], summary.loc["model alone"]
    because = (
        f"lowest mean WRMSSE + mean RMSSE over {len(windows)} validation window(s) "
        f"(cutoffs {', '.join(str(w.cutoff) for w in windows)}): WRMSSE {chosen['wrmsse']:.4f}, mean RMSSE {chosen['mean_rmsse']:.4f}; "
        f"model alone {alone['wrmsse']:.4f} and {alone['mean_rmsse']:.4f}; 28-day mean alone "
        f"{summary.loc['28-day mean alone', 'wrmsse']:.4f} and {summary.loc['28-day mean alone', 'mean_rmsse']:.4f}"
    )
    return Choice(
        dataclasses.replace(new_model_rule(relative), chosen_because=because, segments=segments), table, summary
    )


@dataclass(frozen=True)
class Validated:
    """What the validation windows decide about a trained model."""

    rule: IssueRule
    choice: pd.DataFrame  # one row per band: its series, model weight and partner
    evidence: (
        pd.DataFrame
    )  # mean WRMSSE, mean RMSSE and their sum over the windows: chosen, model alone, 28-day mean alone
    issued: pd.DataFrame  # id, date, prediction: the forecast the rule issues on the model's own window
    scores: ValidationScores  # on the model's own window: issued, the model alone, the partners, the baselines
    windows: tuple[ValidationForecast, ...]  # the windows the rule was chosen on, newest first


def validate(
    inputs: FeatureInputs,
    cutoff: dt.date,
    validation: pd.DataFrame,
    relative: bool = True,
    served: Sequence[ValidationForecast] = (),
) -> Validated:
    """Choose how the model issues on the ``served`` windows (``served_forecast``: the previous
    models' forecasts of the windows up to ``cutoff``, at most ``WINDOWS``), or on its own
    validation window (the 28 days before ``cutoff``: ``validation``, as ``train`` returns it)
    when there are none; score it on its own window."""
    windows = tuple(sorted((f for f in served if f.cutoff <= cutoff), key=lambda f: f.cutoff, reverse=True)[:WINDOWS])
    windows = windows or (ValidationForecast(cutoff, validation),)
    choice = choose_issue_rule(inputs, list(windows), relative)
    if len(windows) == 1 and windows[0].frame is validation:
        choice = dataclasses.replace(
            choice,
            rule=dataclasses.replace(
                choice.rule,
                chosen_because=(
                    "no earlier model's forecast of these windows: chosen on the model's own validation window, "
                    "where early stopping flatters it; " + choice.rule.chosen_because
                ),
            ),
        )
    issued = issued_on(validation, choice.rule)
    partners = _partners(validation)
    others = {
        PURE_MODEL: validation,
        "demand_level": validation.assign(prediction=partners.of(LEVEL_PARTNER)),
        "mean_28": validation.assign(prediction=partners.of(MEAN_PARTNER)),
    }
    return Validated(
        choice.rule, choice.bands, choice.evidence, issued, score_validation(inputs, cutoff, issued, others), windows
    )


def _partners(frame: pd.DataFrame) -> Partners:
    return Partners(frame["level"].to_numpy(), frame["mean_28"].to_numpy())


def issued_on(validation: pd.DataFrame, rule: IssueRule) -> pd.DataFrame:
    """A validation forecast (model units and partners) as ``rule`` issues it."""
    return validation.assign(prediction=rule.blend(validation["prediction"].to_numpy(), _partners(validation)))


def calibrate_validated(inputs: FeatureInputs, validated: Validated) -> Calibration:
    """Interval calibration from the issued forecast's errors on every window the rule was chosen
    on, pooled: 28 residuals of the total from one window were too few, and one month's bias is
    not the next one's (level-1 95 % intervals covered 77 % of the backtest's days)."""
    forecasts, bases = {}, {}
    for w in validated.windows:
        issued, start = issued_on(w.frame, validated.rule), w.cutoff - dt.timedelta(days=HORIZON)
        forecasts[w.cutoff] = forecast_matrix(inputs, issued, start, HORIZON)
        scaled = issued.assign(prediction=_partners(w.frame).scale_base(issued["prediction"].to_numpy()))
        bases[w.cutoff] = forecast_matrix(inputs, scaled, start, HORIZON)
    return calibrate_pooled(inputs, forecasts, bases)
