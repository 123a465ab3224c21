"""Forecast accuracy as the M5 competition scored it, and the usual point metrics.

WRMSSE: every series of the 12 aggregation levels (total down to item-store) is scored by its
root mean squared error over the horizon, scaled by the mean squared one-step naive error of
its own history from its first non-zero sale; each level's series are weighted by their share
of dollar sales over the last 28 days before the horizon; the total is the mean of the 12
weighted level scores. One place for this logic: model validation, forecast scoring and the
dashboard all call it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from m5_assets.tables import LEVELS

WEIGHT_DAYS = 28


def percent_of_sold(summed: np.ndarray, sold: np.ndarray) -> np.ndarray:
    """``summed`` over ``sold``, in %, element by element; NaN where nothing sold. The one form of
    WAPE and bias, for a level (scalars) and for each of its series (arrays)."""
    summed, sold = np.asarray(summed, dtype=np.float64), np.asarray(sold, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sold > 0, 100 * summed / sold, np.nan)


def wape(absolute_error: float, actual: float) -> float:
    """Weighted absolute percentage error, in %: the sum of |forecast - actual| over a level's series
    and days, over the sum of their actuals (NaN when nothing sold). What a planner reads first."""
    return float(percent_of_sold(np.asarray(absolute_error), np.asarray(actual)))


def bias_percent(error: float, actual: float) -> float:
    """The sum of (forecast - actual) over the sum of actuals, in %: above 0 the forecast runs high."""
    return float(percent_of_sold(np.asarray(error), np.asarray(actual)))


def aggregation(series: pd.DataFrame, keys: tuple[str, ...]) -> tuple[sparse.csr_matrix, pd.DataFrame]:
    """Sparse 0/1 matrix (groups x series) summing bottom series into one level, and its groups."""
    if not keys:
        codes, groups = np.zeros(len(series), dtype=np.int64), pd.DataFrame(index=[0])
    else:
        frame = series[list(keys)].astype(str)
        groups = frame.drop_duplicates().sort_values(list(keys)).reset_index(drop=True)
        codes = frame.merge(groups.reset_index(), on=list(keys), how="left")["index"].to_numpy()
    matrix = sparse.csr_matrix(
        (np.ones(len(series)), (codes, np.arange(len(series)))), shape=(len(groups), len(series))
    )
    return matrix, groups


def naive_scale(history: np.ndarray) -> np.ndarray:
    """Mean squared one-step change of each row, counted from its first non-zero value.

    NaN where a row has fewer than two values from its first sale on (no scale can be formed).
    """
    sold = history != 0
    # The first sale's day, or the row's length where there is none: a cumulative sum over the
    # days took 8 of a full-scale model's 48 s of validation.
    first = np.where(sold.any(axis=1), sold.argmax(axis=1), history.shape[1])
    steps = np.diff(history, axis=1) ** 2
    # A change counts when the earlier day is on or after the first sale.
    counted = np.arange(history.shape[1] - 1)[None, :] >= first[:, None]
    count = counted.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (steps * counted).sum(axis=1) / count, np.nan)


@dataclass(frozen=True)
class WRMSSE:
    """The total score, the score of each level, and every aggregated series' RMSSE and weight."""

    total: float
    levels: pd.DataFrame  # level, name, series, score
    series: pd.DataFrame  # level, keys..., weight, scale, rmsse


@dataclass(frozen=True)
class LevelSums:
    """One level's series summed over some bottom series: what WRMSSE needs of them.

    Sums over disjoint sets of bottom series add up (``add_level_sums``), which is how scoring
    by store group sees the whole hierarchy. A level whose every group lies inside those series
    (``local``) is reduced already: each group's scale and mean squared error per method. Any
    other level keeps what adds up: actuals and forecasts per group, and its history (units
    before the horizon), from which the scale is formed once every part is added.
    """

    number: int
    name: str
    groups: pd.DataFrame  # the level's key columns, one row per group, sorted
    dollars: np.ndarray  # dollar sales of each group over the WEIGHT_DAYS before the horizon
    scale: np.ndarray | None = None  # local levels
    errors: dict[str, np.ndarray] | None = None  # local levels: method -> mean squared error
    # groups x horizon, on every level but the bottom one (whose point sums cover it): a local
    # level keeps them too, so its WAPE, bias and interval coverage are formed once parts are added.
    actual: np.ndarray | None = None
    forecasts: dict[str, np.ndarray] | None = None  # method -> groups x horizon
    history: np.ndarray | None = None  # other levels: groups x days before the horizon

    @property
    def local(self) -> bool:
        return self.scale is not None


def _everywhere(keys: tuple[str, ...]) -> bool:
    return True


def level_sums(
    hierarchy: pd.DataFrame,
    history: np.ndarray,
    history_prices: np.ndarray,
    actual: np.ndarray,
    forecasts: dict[str, np.ndarray],
    local: Callable[[tuple[str, ...]], bool] = _everywhere,
    keep_history: bool = True,
) -> list[LevelSums]:
    """Each level's sums over the bottom series given (rows of ``hierarchy``, ``history`` of units
    before the horizon, its ``history_prices``, ``actual`` and each method's ``forecast`` over the
    horizon). ``local(keys)`` says whether a level's groups lie wholly in these series. Without
    ``keep_history`` the other levels' history is left out, to be put in once for many days
    (``level_histories``, ``with_history``): it is most of their size."""
    bottom_dollars = np.nansum(history[:, -WEIGHT_DAYS:] * history_prices[:, -WEIGHT_DAYS:], axis=1)
    out = []
    for number, name, keys in LEVELS:
        matrix, groups = aggregation(hierarchy, keys)
        summed = {method: matrix @ forecast for method, forecast in forecasts.items()}
        level_actual = matrix @ actual
        if local(keys):
            errors = {method: ((level_actual - f) ** 2).mean(axis=1) for method, f in summed.items()}
            out.append(
                LevelSums(
                    number,
                    name,
                    groups,
                    matrix @ bottom_dollars,
                    scale=naive_scale(matrix @ history),
                    errors=errors,
                    actual=None if number == LEVELS[-1][0] else level_actual,
                    forecasts=None if number == LEVELS[-1][0] else summed,
                )
            )
        else:
            history_sums = matrix @ history if keep_history else None
            out.append(
                LevelSums(
                    number,
                    name,
                    groups,
                    matrix @ bottom_dollars,
                    actual=level_actual,
                    forecasts=summed,
                    history=history_sums,
                )
            )
    return out


LevelHistory = tuple[pd.DataFrame, np.ndarray]  # a level's groups and their units per day


def level_histories(
    hierarchy: pd.DataFrame, units: np.ndarray, local: Callable[[tuple[str, ...]], bool] = _everywhere
) -> dict[int, LevelHistory]:
    """The units per day of each level that is not ``local``, summed over the bottom series given."""
    out = {}
    for number, _, keys in LEVELS:
        if not local(keys):
            matrix, groups = aggregation(hierarchy, keys)
            out[number] = (groups, matrix @ units)
    return out


def add_level_histories(parts: Sequence[dict[int, LevelHistory]]) -> dict[int, LevelHistory]:
    """``level_histories`` of disjoint bottom series, added up."""
    out = {}
    for number in parts[0]:
        frames = [p[number][0] for p in parts]
        groups, spots = _aligned(frames, list(frames[0].columns))
        out[number] = (groups, _added([p[number][1] for p in parts], spots, len(groups)))
    return out


def with_history(levels: Sequence[LevelSums], histories: dict[int, LevelHistory], days: int) -> list[LevelSums]:
    """``levels`` whose non-local levels take their history from ``histories``: the first
    ``days`` days (those before the horizon)."""
    out = []
    for lv in levels:
        if lv.local:
            out.append(lv)
            continue
        groups, units = histories[lv.number]
        if not groups.equals(lv.groups):
            raise ValueError(f"level {lv.number}: the history's groups are not the scored ones")
        out.append(dataclasses.replace(lv, history=units[:, :days]))
    return out


def _aligned(frames: Sequence[pd.DataFrame], keys: list[str]) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """The union of several levels' groups, sorted as ``aggregation`` sorts them, and where each
    frame's groups are in it."""
    if not keys:
        return pd.DataFrame(index=[0]), [np.zeros(len(f), dtype=np.int64) for f in frames]
    union = (
        pd.concat([f[keys].astype(str) for f in frames], ignore_index=True)
        .drop_duplicates()
        .sort_values(keys)
        .reset_index(drop=True)
    )
    spots = [f[keys].astype(str).merge(union.reset_index(), on=keys, how="left")["index"].to_numpy() for f in frames]
    return union, spots


def _added(arrays: Sequence[np.ndarray], spots: list[np.ndarray], n: int) -> np.ndarray:
    total = np.zeros((n, *arrays[0].shape[1:]))
    for array, at in zip(arrays, spots, strict=True):
        np.add.at(total, at, array)
    return total


def add_level_sums(parts: Sequence[Sequence[LevelSums]]) -> list[LevelSums]:
    """The sums of every part (each over its own bottom series) as one: local levels' groups are
    put together, other levels' groups added up."""
    out = []
    for levels in zip(*parts, strict=True):
        first = levels[0]
        keys = [c for c in first.groups.columns]
        groups, spots = _aligned([lv.groups for lv in levels], keys)
        dollars = _added([lv.dollars for lv in levels], spots, len(groups))
        if first.local:
            if sum(len(lv.groups) for lv in levels) != len(groups):
                raise ValueError(f"level {first.number}: a group is in two parts, so it is not local to either")
            scale = _added([lv.scale for lv in levels], spots, len(groups))
            errors = {m: _added([lv.errors[m] for lv in levels], spots, len(groups)) for m in first.errors}
            if first.actual is None:
                actual, forecasts = None, None
            else:
                actual = _added([lv.actual for lv in levels], spots, len(groups))
                forecasts = {m: _added([lv.forecasts[m] for lv in levels], spots, len(groups)) for m in first.forecasts}
            out.append(
                LevelSums(
                    first.number,
                    first.name,
                    groups,
                    dollars,
                    scale=scale,
                    errors=errors,
                    actual=actual,
                    forecasts=forecasts,
                )
            )
        else:
            actual = _added([lv.actual for lv in levels], spots, len(groups))
            forecasts = {m: _added([lv.forecasts[m] for lv in levels], spots, len(groups)) for m in first.forecasts}
            history = _added([lv.history for lv in levels], spots, len(groups)) if first.history is not None else None
            out.append(
                LevelSums(
                    first.number, first.name, groups, dollars, actual=actual, forecasts=forecasts, history=history
                )
            )
    return out


def _weights(dollars: np.ndarray) -> np.ndarray:
    total = dollars.sum()
    return dollars / total if total > 0 else np.zeros(len(dollars))


def _rmsse(mean_squared_error: np.ndarray, scale: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(mean_squared_error / scale)


def _weighted(weight: np.ndarray, rmsse: np.ndarray) -> float:
    # A series with no sales to scale by has no dollar sales either: it carries no weight.
    scored = np.isfinite(rmsse)
    return float(np.sum(weight[scored] * rmsse[scored]))


class WindowScorer:
    """WRMSSE and mean item-store RMSSE of many forecasts of one window, as ``wrmsse_of_each``
    and ``mean_bottom_rmsse`` score them, with the levels, scales and weights formed once: a
    search over issue rules scores hundreds of forecasts of the same days."""

    def __init__(
        self, hierarchy: pd.DataFrame, history: np.ndarray, history_prices: np.ndarray, actual: np.ndarray
    ) -> None:
        levels = level_sums(hierarchy, history, history_prices, actual, {})
        # The bottom level's matrix is the identity when the series are in key order: skipped.
        self._matrices: list[sparse.csr_matrix | None] = [
            _unless_identity(aggregation(hierarchy, keys)[0]) for _, _, keys in LEVELS
        ]
        self._actual = [actual if m is None else m @ actual for m in self._matrices]
        self._scales: list[np.ndarray] = []
        for lv in levels:
            # level_sums' default ``local`` makes every level local, and a local level has its scale.
            assert lv.scale is not None
            self._scales.append(lv.scale)
        self._weights = [_weights(lv.dollars) for lv in levels]

    def score(self, forecast: np.ndarray) -> tuple[float, float]:
        """(WRMSSE, mean RMSSE over the item-store series that have a scale) of ``forecast``."""
        scores = []
        for matrix, actual, scale, weight in zip(
            self._matrices, self._actual, self._scales, self._weights, strict=True
        ):
            summed = forecast if matrix is None else matrix @ forecast
            rmsse = _rmsse(((actual - summed) ** 2).mean(axis=1), scale)
            scores.append(_weighted(weight, rmsse))
        return float(np.mean(scores)), float(np.nanmean(rmsse)) if np.isfinite(rmsse).any() else float("nan")


def _unless_identity(matrix: sparse.csr_matrix) -> sparse.csr_matrix | None:
    """None for an identity matrix, else ``matrix``."""
    n = matrix.shape[0]
    identity = (
        matrix.shape == (n, n)
        and matrix.nnz == n
        and np.array_equal(matrix.indptr, np.arange(n + 1))
        and np.array_equal(matrix.indices, np.arange(n))
        and bool(np.all(matrix.data == 1.0))
    )
    return None if identity else matrix


def scores_of(levels: Sequence[LevelSums]) -> dict[str, WRMSSE]:
    """WRMSSE of each method from a whole hierarchy's sums."""
    methods = next(iter(lv.errors if lv.local else lv.forecasts for lv in levels))
    # A local level is built with its scale and errors, any other with its actual and forecasts.
    assert methods is not None
    rows: dict[str, list[pd.DataFrame]] = {m: [] for m in methods}
    level_rows: dict[str, list[dict[str, object]]] = {m: [] for m in methods}
    for lv in levels:
        if lv.local:
            assert lv.scale is not None and lv.errors is not None
            scale, errors = lv.scale, lv.errors
        else:
            if lv.history is None:
                raise ValueError(f"level {lv.number}: its history is needed to form the scale")
            assert lv.actual is not None and lv.forecasts is not None
            scale = naive_scale(lv.history)
            errors = {m: ((lv.actual - f) ** 2).mean(axis=1) for m, f in lv.forecasts.items()}
        weight = _weights(lv.dollars)
        for method in methods:
            rmsse = _rmsse(errors[method], scale)
            score = _weighted(weight, rmsse)
            level_rows[method].append({"level": lv.number, "name": lv.name, "series": len(lv.groups), "score": score})
            rows[method].append(lv.groups.assign(level=lv.number, weight=weight, scale=scale, rmsse=rmsse))
    out = {}
    for method in methods:
        table = pd.DataFrame(level_rows[method])
        out[method] = WRMSSE(
            total=float(table["score"].mean()), levels=table, series=pd.concat(rows[method], ignore_index=True)
        )
    return out


def wrmsse(
    hierarchy: pd.DataFrame,
    history: np.ndarray,
    history_prices: np.ndarray,
    actual: np.ndarray,
    forecast: np.ndarray,
) -> WRMSSE:
    """Score ``forecast`` against ``actual`` (series x horizon days) the way M5 did.

    ``hierarchy`` has one row per bottom series (item_id, dept_id, cat_id, store_id, state_id),
    aligned with the rows of ``history`` (units of every day before the horizon) and
    ``history_prices`` (each of those days' price, NaN where none); the weights come from the last
    28 of those days.
    """
    return wrmsse_of_each(hierarchy, history, history_prices, actual, {"forecast": forecast})["forecast"]


def wrmsse_of_each(
    hierarchy: pd.DataFrame,
    history: np.ndarray,
    history_prices: np.ndarray,
    actual: np.ndarray,
    forecasts: dict[str, np.ndarray],
) -> dict[str, WRMSSE]:
    """``wrmsse`` of several forecasts of the same series and days: scales and weights once."""
    for forecast in forecasts.values():
        if not (len(hierarchy) == len(history) == len(actual) == len(forecast)) or actual.shape != forecast.shape:
            raise ValueError("hierarchy, history, actual and forecast must describe the same series and horizon")
    return scores_of(level_sums(hierarchy, history, history_prices, actual, forecasts))


def mean_bottom_rmsse(score: WRMSSE) -> float:
    """Mean RMSSE over the item-store series that have a scale (a sale before the window)."""
    bottom = score.series[score.series["level"] == LEVELS[-1][0]]["rmsse"]
    return float(np.nanmean(bottom)) if bottom.notna().any() else float("nan")


def point_metrics(actual: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and bias (mean of forecast minus actual) over every series-day."""
    error = forecast - actual
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "bias": float(np.mean(error)),
    }
