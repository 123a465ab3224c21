"""Issue the 28-day forecast of one forecast date from the feature store and a trained model.

Every units-derived feature is lagged at least 28 days, so the feature rows of days D .. D+27
are built from sales before D only: the forecast issued on D is the model's prediction on those
rows, scaled by each row's own demand level and blended with each series' level on the row dated
D+27 (the level of the days just before D; see ``model.forecaster``), whatever the store holds
for D and later.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from m5_assets.features.catalog import HORIZON
from m5_assets.grid import SERIES_COLUMNS, as_text
from m5_assets.hierarchy import BOTTOM_LEVEL, hierarchy_of, level_sums
from m5_assets.intervals import Calibration
from m5_assets.model import prediction
from m5_assets.model.forecaster import IssueRule, IssuingModel, Partners, row_levels
from m5_assets.model.matrix import Rows, read_rows
from m5_assets.table_files import TableSource

HIERARCHY_COLUMNS = SERIES_COLUMNS[1:]


@dataclass(frozen=True)
class Forecast:
    bottom: pd.DataFrame  # one row per released series and day: ids, date, horizon, forecast, bounds, model
    levels: pd.DataFrame  # levels 1-11: level, level_name, hierarchy columns (null where not in the level), ...
    # The bottom level already written as its partition file is (by a run's only store group):
    # published as it is rather than written again.
    bottom_file: Path | None = None


def read_forecast_rows(
    features: TableSource,
    first_day: dt.date,
    last_day: dt.date,
    model: IssuingModel,
    stores: Sequence[str] | None = None,
) -> Rows:
    """Feature rows of every forecast issued from ``first_day`` to ``last_day`` (of ``stores``
    only, for one shard of a sharded run), read once."""
    rows = read_rows(
        features,
        first_day,
        last_day + dt.timedelta(days=HORIZON),
        vocabulary=model.booster.pandas_categorical,
        labelled=False,
        key_columns=(*SERIES_COLUMNS, "date"),
        stores=stores,
    )
    # Converted once here: each forecast date selects its rows by date.
    rows.keys["date"] = pd.to_datetime(rows.keys["date"])
    return rows


def issue(
    features: TableSource,
    day: dt.date,
    model: IssuingModel,
    rows: Rows | None = None,
    predictions: np.ndarray | None = None,
) -> Forecast:
    """Forecasts for ``day`` .. ``day + 27`` of every series released by then, with intervals.

    ``rows`` may hold the feature rows of a longer range (see ``read_forecast_rows``) read with
    this model's vocabulary; by default they are read here. A feature row does not depend on the
    day a forecast is issued (only the level it is scaled by does), so a backfill may pass the
    booster's ``predictions`` of all ``rows``, made once, instead of predicting each day's 28 days
    again.
    """
    bottom = issue_bottom(features, day, model, rows, predictions)
    return Forecast(bottom=bottom, levels=levels_of(bottom, day, model.calibration))


def issue_bottom(
    features: TableSource,
    day: dt.date,
    model: IssuingModel,
    rows: Rows | None = None,
    predictions: np.ndarray | None = None,
) -> pd.DataFrame:
    """The bottom level of ``issue``: of every series in ``rows`` (all of them, or one shard's)."""
    if model.cutoff > day:
        raise ValueError(f"model version {model.version} was trained to {model.cutoff}, after the forecast date {day}")
    end = day + dt.timedelta(days=HORIZON)
    rows = rows if rows is not None else read_forecast_rows(features, day, day, model)
    all_dates = pd.to_datetime(rows.keys["date"])
    inside = ((all_dates >= pd.Timestamp(day)) & (all_dates < pd.Timestamp(end))).to_numpy()
    dates = all_dates[inside]
    if not inside.any() or dates.max() < pd.Timestamp(end - dt.timedelta(days=1)):
        last = dates.max().date() if inside.any() else "none"
        raise ValueError(
            f"{features}: feature rows reach {last}; forecasting {day} needs them to {end - dt.timedelta(days=1)}"
        )
    keys, matrix = rows.keys.loc[inside], rows.matrix[inside]
    if predictions is not None:
        booster_says = predictions[inside]
    else:
        booster_says = prediction.predict(model.booster, matrix)
    bottom = bottom_forecast(keys, matrix, booster_says, day, model.rule, model.calibration)
    return bottom.assign(model_version=model.version, mlflow_run_id=model.run_id)


def bottom_forecast(
    keys: pd.DataFrame,
    matrix: np.ndarray,
    booster_says: np.ndarray,
    day: dt.date,
    rule: IssueRule,
    calibration: Calibration,
) -> pd.DataFrame:
    """The bottom level of the forecast issued on ``day``, ordered by id and date: point forecast
    and interval bounds per series and day.

    ``keys`` (the series columns and date) and ``matrix`` are the feature rows of the days
    forecast, ``day`` .. ``day + 27``; ``booster_says`` is the booster's output on them. Issuing a
    partition and the registered MLflow model both forecast through this function.
    """
    dates = pd.to_datetime(keys["date"])
    partners = Partners.at_origin(keys, matrix, day)
    prediction = rule.units(booster_says, row_levels(matrix), partners)
    horizon = (dates - pd.Timestamp(day)).dt.days.to_numpy()
    bottom = pd.DataFrame({c: as_text(keys[c]) for c in SERIES_COLUMNS}).assign(
        date=dates.dt.date.to_numpy(), horizon=(horizon + 1).astype(np.int16), forecast=prediction
    )
    base = partners.scale_base(prediction)
    bottom = bottom.assign(
        **calibration.bounds(BOTTOM_LEVEL, prediction, base), sigma=calibration.sigma(BOTTOM_LEVEL, prediction, base)
    )
    return bottom.sort_values(["id", "date"]).reset_index(drop=True)


def levels_of(bottom: pd.DataFrame, day: dt.date, calibration: Calibration) -> pd.DataFrame:
    """Levels 1-11 of a whole bottom level (every series: a sharded run combines its shards first)."""
    hierarchy = hierarchy_of(bottom)
    row = pd.Series(np.arange(len(hierarchy)), index=hierarchy["id"]).loc[bottom["id"]].to_numpy()
    matrix = np.zeros((len(hierarchy), HORIZON))
    matrix[row, bottom["horizon"].to_numpy() - 1] = bottom["forecast"].to_numpy()
    # An object array of dates, as np.tile made of the list (numpy's annotations refuse the list).
    dates = np.array([day + dt.timedelta(days=h) for h in range(HORIZON)])
    frames = []
    for sums in level_sums(hierarchy, matrix):
        if sums.level == BOTTOM_LEVEL:
            continue
        n = len(sums.groups)
        frame = pd.DataFrame({"level": np.int8(sums.level), "level_name": sums.name}, index=np.arange(n * HORIZON))
        for column in HIERARCHY_COLUMNS:
            frame[column] = np.repeat(sums.groups[column].to_numpy(), HORIZON) if column in sums.groups else None
        frame["date"] = np.tile(dates, n)
        frame["horizon"] = np.tile(np.arange(1, HORIZON + 1, dtype=np.int16), n)
        values = sums.values.ravel()
        frame["forecast"] = values
        frames.append(
            frame.assign(**calibration.bounds(sums.level, values), sigma=calibration.sigma(sums.level, values))
        )
    levels = pd.concat(frames, ignore_index=True)
    return levels.assign(model_version=bottom["model_version"].iloc[0], mlflow_run_id=bottom["mlflow_run_id"].iloc[0])
