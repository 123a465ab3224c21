"""Feature drift: whether the rows a forecast reads look like the rows its model was validated on.

Windows (issue 23). The current window is the forecast's own input: the released rows dated
D .. D+27 of the forecast issued on D. Every units-derived feature is lagged at least 28 days, so
they are built from sales before D only; prices and the calendar are known ahead, and the forecast
reads these very rows. The reference is the serving model's validation window: its rows dated
C-28 .. C-1 before its cutoff C, the 28-day forecast its promotion was decided on. Both are one
forecast's 28 days of the same series, about 1 to 2 months apart, so features that trend by
construction (a 90-day mean, a price over its all-time mean) move little between them.

The training window (730 days) was the reference before, and the 28 days before D the current
window (rows that cannot see a change in the last 28 days of sales at all). Every genuine run
failed the check on every date: on ``real_subset`` (10 series) ``price_relative_usual`` scored a
PSI of 3.2, ``roll_mean_90`` 1.9, ``demand_level_56`` 1.5; on ``real_280`` ``price_change_1w``
0.56 and ``price_relative_usual`` 0.31. Against the validation window the largest pooled PSI of a
judged feature is 0.08 on ``real_280`` over its eight forecast dates and 0.02 on the demo data. The
same season a year before was not chosen: it keeps a year of trend (inflation in prices, a moved
level) between the windows.

Sample size. PSI is biased upward in small samples, and rows are not independent: a 90-day mean
barely changes in 28 days, and a price change or a promotion moves an item in every store at
once. On ``real_subset`` the validation window still gave ``roll_mean_90`` a PSI of 2.0 to 2.4 and
``price_relative_usual`` 1.5 to 2.5 (10 items, 280 rows). So each PSI is judged against the PSI
the same comparison shows with no change: the 99th percentile over ``PERMUTATIONS`` seeded draws
that swap whole items (all their stores' rows) between the two windows, each with probability 1/2
(an item in one window only stays put). That keeps the items, the bins and the ties of the real
comparison, where a formula such as ``(bins - 1) (1/n + 1/m)`` assumes independent rows and would
take 10 items for 280 samples. On ``real_subset`` it is 2.7 to 6 for ``roll_mean_90``, on
``real_280`` (28 items) 0.07 for the pooled ``demand_level_56``, on the demo data (115 items) at
most 0.01 for the pooled features. Draws that swapped single series (series as the unit) were tried
first: on ``real_280`` a price rise of a few items in all ten stores then failed the check. Chosen
over a historical baseline (the PSI of earlier window pairs the same distance apart), which reads a
year of rows per date and lets one odd month in the history excuse any later one. It costs one
matrix product per feature and segment (draws x items x bins).

Segments. A change in one department can hide in the pooled rows: one department's units x 3
over the last 28 days of ``real_280`` (40 of 280 series) moved no pooled PSI above 0.15. So each
judged feature is also compared within each department (on the pooled deciles, against the same
item swaps), and judged where it moved most beyond its no-change PSI; ``segment`` names where. A
department of 4 or 5 items (``real_280``, ``real_subset``) has so wide a no-change PSI that it is
never flagged there (genuine departments of ``real_280`` moved their 28-day means by up to x 2.4
between two months): what this catches is a department of many items, such as the demo data's
FOODS_1 (15 items x 10 stores) x 3, where ``units_lag_28`` scored a PSI of 2.97 against a
no-change 0.40.

Importance. What matters is drift in what the model uses: each feature's weight is its gain in the
serving model over the mean gain of the judged features, capped at 1. A feature used at least as
much as an average one counts fully, one used less in proportion, one never used not at all (a
value no model reads cannot move a forecast; gross errors in raw values are the data checks' job:
a price x 100 is refused by ``prices_within_history``). A version without recorded importances is
judged unweighted.

A feature's score is ``importance x max(psi - no_change_psi, 0)`` in its segment: the drift beyond
what this sample shows with no change, of the features the model leans on, judged against
``warn_psi`` (0.1) and ``fail_psi`` (0.25) as a PSI would be. On the genuine data and the demo data
the largest score over every forecast date of ``m5 run`` is 0.009 (``real_280``), 0.0
(``real_subset``) and 0.016 (demo).

Per feature, over released rows only (a series not yet on sale has no features):
- the population stability index over the reference's deciles,
  ``sum((a - e) * ln(a / e))`` with ``e`` and ``a`` the reference's and the current window's
  share of rows in each bin (a share of 0 counts as 1e-4, so an empty bin costs a bounded amount);
- the two-sample Kolmogorov–Smirnov statistic, the largest gap between the two empirical CDFs.

Discrete features (SNAP, event flags) have fewer distinct deciles than ten: their bins are the
distinct edges, so a 0/1 flag is compared as two bins. Missing values are left out of both windows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from m5_assets.features.catalog import FEATURES, HORIZON
from m5_assets.table_files import TableFiles, TableSource

PSI_BINS = 10
EMPTY_SHARE = 1e-4
PERMUTATIONS = 200  # item swaps drawn for each forecast date's no-change PSI
NO_CHANGE_QUANTILE = 0.99
SEED = 23


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def bin_edges(reference: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Inner bin edges: the reference's distinct interior quantiles."""
    reference = _finite(reference)
    if len(reference) == 0:
        return np.array([])
    return np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))


def _bins(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # Bins are (-inf, e0], (e0, e1], ..., (e_last, inf): a value equal to an edge stays below it,
    # so a flag that is always 0 in the reference still has a bin of its own for 1.
    return np.searchsorted(edges, values, side="left")


def _psi_of_counts(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """PSI between bin counts (the last axis is the bins; any leading axes are batches)."""
    e = np.maximum(expected / expected.sum(axis=-1, keepdims=True), EMPTY_SHARE)
    a = np.maximum(actual / actual.sum(axis=-1, keepdims=True), EMPTY_SHARE)
    return np.sum((a - e) * np.log(a / e), axis=-1)


@dataclass(frozen=True)
class Reference:
    """One feature's reference window, prepared once for any number of current windows."""

    ordered: np.ndarray  # finite values, sorted
    edges: np.ndarray  # PSI bin edges
    counts: np.ndarray  # rows of the reference in each bin

    @classmethod
    def of(cls, values: np.ndarray, bins: int = PSI_BINS) -> Reference:
        ordered = np.sort(_finite(values))
        edges = bin_edges(ordered, bins)
        return cls(ordered, edges, np.bincount(_bins(ordered, edges), minlength=len(edges) + 1))

    @classmethod
    def over(cls, values: np.ndarray, edges: np.ndarray) -> Reference:
        """A reference binned on given edges (a segment's values on the pooled deciles)."""
        ordered = np.sort(_finite(values))
        return cls(ordered, edges, np.bincount(_bins(ordered, edges), minlength=len(edges) + 1))

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 1

    def psi(self, current: np.ndarray) -> float:
        """Population stability index of ``current`` against this reference (0: the same shares)."""
        current = _finite(current)
        if len(self.ordered) == 0 or len(current) == 0:
            return float("nan")
        return float(_psi_of_counts(self.counts, np.bincount(_bins(current, self.edges), minlength=self.n_bins)))

    def ks(self, current: np.ndarray) -> float:
        """Two-sample Kolmogorov–Smirnov statistic against this reference.

        Between two consecutive current values the current CDF is flat and the reference's only
        rises, so the largest gap is at a current value or just before one: two searches of the
        current values into the sorted reference find it exactly.
        """
        current = np.sort(_finite(current))
        n, m = len(self.ordered), len(current)
        if n == 0 or m == 0:
            return float("nan")
        values = np.unique(current)
        at = np.searchsorted(current, values, side="right") / m  # current CDF at each value
        before = np.concatenate([[0.0], at[:-1]])  # and just before it
        ref_at = np.searchsorted(self.ordered, values, side="right") / n
        ref_before = np.searchsorted(self.ordered, values, side="left") / n
        return float(max(np.max(np.abs(ref_at - at)), np.max(np.abs(ref_before - before))))


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``current`` against ``reference`` (0: the same shares)."""
    return Reference.of(reference, bins).psi(current)


def ks(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the empirical CDFs."""
    return Reference.of(reference).ks(current)


def _item_counts(items: np.ndarray, bins: np.ndarray, n_items: int, n_bins: int) -> np.ndarray:
    """Rows of each item (a code 0 .. n_items-1) in each bin: an n_items x n_bins matrix."""
    return np.bincount(items * n_bins + bins, minlength=n_items * n_bins).reshape(n_items, n_bins).astype(np.float64)


def no_change_psi(
    reference: Reference,
    ref_values: np.ndarray,
    ref_items: np.ndarray,
    current: np.ndarray,
    cur_items: np.ndarray,
    swaps: np.ndarray,
) -> float:
    """The PSI this comparison shows when nothing changed: its ``NO_CHANGE_QUANTILE`` over
    ``swaps`` (draws x items, 1 where an item's reference and current values trade places).

    A swapped item keeps its number of rows in each window (its values' shares trade places), so
    windows of different lengths compare as they do unswapped. ``ref_items`` and ``cur_items`` are
    item codes (column indices of ``swaps``); rows with a missing value are left out, as in the PSI.
    """
    ref_ok, cur_ok = np.isfinite(ref_values), np.isfinite(current)
    if not ref_ok.any() or not cur_ok.any():
        return float("nan")
    n_items, n_bins = swaps.shape[1], reference.n_bins
    ref = _item_counts(ref_items[ref_ok], _bins(ref_values[ref_ok], reference.edges), n_items, n_bins)
    cur = _item_counts(cur_items[cur_ok], _bins(current[cur_ok], reference.edges), n_items, n_bins)
    n, m = ref.sum(axis=1, keepdims=True), cur.sum(axis=1, keepdims=True)
    both = (n > 0) & (m > 0)  # an item in one window only has nothing to trade
    into_ref = np.where(both, cur * np.divide(n, m, out=np.zeros_like(n), where=both) - ref, 0.0)
    into_cur = np.where(both, ref * np.divide(m, n, out=np.zeros_like(m), where=both) - cur, 0.0)
    drawn = _psi_of_counts(ref.sum(axis=0) + swaps @ into_ref, cur.sum(axis=0) + swaps @ into_cur)
    return float(np.quantile(drawn, NO_CHANGE_QUANTILE))


def swap_draws(ref_items: np.ndarray, cur_items: np.ndarray, n_items: int, seed: int = SEED) -> np.ndarray:
    """``PERMUTATIONS`` seeded draws (draws x items) of which items trade their windows' rows:
    each item present in both windows with probability 1/2, the others never."""
    both = np.zeros(n_items, dtype=bool)
    both[np.intersect1d(ref_items, cur_items)] = True
    draws = np.random.default_rng(seed).random((PERMUTATIONS, n_items)) < 0.5
    return (draws & both).astype(np.float64)


@dataclass(frozen=True)
class Thresholds:
    warn_psi: float = 0.1
    fail_psi: float = 0.25

    def status(self, value: float) -> str:
        if not np.isfinite(value) or value <= self.warn_psi:
            return "ok"
        return "drift" if value > self.fail_psi else "warn"


# Features that are a function of the calendar date alone (the same for every series on a day)
# differ between any two 28-day windows. The calendar family is left out.
# The events are measured and shown, but not judged (status "calendar"): on the demo data the days
# to the next and since the last event had a PSI of 1.3 to 2.0 on every date tried, and at full
# scale the event flag and type had 0.42 on 2016-04-25 only because those 28 days held no event.
# SNAP (date and state) is judged: its share of days is about the same in any month. The
# categorical ids are not measurements.
DRIFT_FAMILIES = ("lags", "rolling", "level", "price", "snap", "events")
NOT_JUDGED_FAMILIES = ("events",)
CALENDAR_STATUS = "calendar"
FLAGGED = ("warn", "drift")  # the statuses a check reports
DRIFT_FEATURES = tuple(f for f in FEATURES if f.family in DRIFT_FAMILIES)
JUDGED_FEATURES = tuple(f.name for f in DRIFT_FEATURES if f.family not in NOT_JUDGED_FAMILIES)


def importance_weights(gain: dict[str, float]) -> dict[str, float]:
    """Each judged feature's weight from its gain in the serving model: gain over the mean gain of
    the judged features, capped at 1. Without gains (a version that recorded none), every weight is 1."""
    gains = np.array([max(float(gain.get(name, 0.0)), 0.0) for name in JUDGED_FEATURES])
    if not gain or gains.sum() <= 0:
        return dict.fromkeys(JUDGED_FEATURES, 1.0)
    return {name: float(min(1.0, g / gains.mean())) for name, g in zip(JUDGED_FEATURES, gains, strict=True)}


ALL_SERIES = "all series"
SEGMENT_COLUMN = "dept_id"  # a change in one department can hide in the pooled rows
CLUSTER_COLUMN = "item_id"  # what the no-change draws swap between the windows (see the module docstring)


def read_window(
    con: duckdb.DuckDBPyConnection, features: TableSource, start: dt.date, end: dt.date
) -> dict[str, np.ndarray]:
    """Every drift feature's values (floats, NaN where null), the item, department and ``date`` of
    the released rows dated in [start, end)."""
    columns = ", ".join(f.name for f in DRIFT_FEATURES)
    query = (
        f"SELECT {CLUSTER_COLUMN}, {SEGMENT_COLUMN}, date, {columns} FROM {TableFiles.of(features).scan()} "
        f"WHERE date >= DATE '{start}' AND date < DATE '{end}' AND sell_price IS NOT NULL"
    )
    found = con.sql(query).fetchnumpy()
    # Nulls come back masked; unmasked, they would read as whatever the buffer held.
    values = {f.name: np.ma.filled(np.ma.asarray(found[f.name]).astype(np.float64), np.nan) for f in DRIFT_FEATURES}
    keys = {name: np.asarray(found[name]).astype(str) for name in (CLUSTER_COLUMN, SEGMENT_COLUMN)}
    return {**keys, "date": np.asarray(found["date"]).astype("datetime64[D]"), **values}


def forecast_rows(window: dict[str, np.ndarray], day: dt.date, days: int = HORIZON) -> dict[str, np.ndarray]:
    """The rows of ``window`` (``read_window``'s) the forecast issued on ``day`` reads: dated
    ``day`` .. ``day + days - 1``."""
    dates = window["date"]
    inside = (dates >= np.datetime64(day)) & (dates < np.datetime64(day + dt.timedelta(days=days)))
    return {name: values[inside] for name, values in window.items()}


def _segments(window: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Row masks: all series, then each department."""
    masks = {ALL_SERIES: np.ones(len(window[CLUSTER_COLUMN]), dtype=bool)}
    for segment in np.unique(window[SEGMENT_COLUMN]):
        masks[str(segment)] = window[SEGMENT_COLUMN] == segment
    return masks


@dataclass(frozen=True)
class PreparedReference:
    """A reference window read once, each feature of each segment prepared for any number of
    current windows."""

    window: dict[str, np.ndarray]
    segments: dict[str, np.ndarray]  # segment -> its rows of the window
    features: dict[tuple[str, str], Reference]  # (segment, feature) -> prepared reference


def prepare(reference: dict[str, np.ndarray]) -> PreparedReference:
    """Each drift feature's reference window (``read_window``'s values), prepared once."""
    segments = _segments(reference)
    prepared = {}
    for spec in DRIFT_FEATURES:
        pooled = prepared[(ALL_SERIES, spec.name)] = Reference.of(reference[spec.name])
        if spec.family in NOT_JUDGED_FAMILIES:
            continue
        for segment, rows in segments.items():
            if segment != ALL_SERIES:
                prepared[(segment, spec.name)] = Reference.over(reference[spec.name][rows], pooled.edges)
    return PreparedReference(reference, segments, prepared)


def _judged(
    reference: PreparedReference,
    current: dict[str, np.ndarray],
    name: str,
    ref_items: np.ndarray,
    cur_items: np.ndarray,
    swaps: np.ndarray,
) -> dict[str, Any]:
    """The segment where feature ``name`` moved most beyond its no-change PSI, with its figures."""
    best: dict[str, Any] | None = None
    for segment, ref_rows in reference.segments.items():
        cur_rows = (
            np.ones(len(current[CLUSTER_COLUMN]), dtype=bool)
            if segment == ALL_SERIES
            else current[SEGMENT_COLUMN] == segment
        )
        if not cur_rows.any():
            continue
        prepared, values = reference.features[(segment, name)], np.asarray(current[name], dtype=np.float64)[cur_rows]
        value = prepared.psi(values)
        baseline = no_change_psi(
            prepared, reference.window[name][ref_rows], ref_items[ref_rows], values, cur_items[cur_rows], swaps
        )
        excess = value - baseline if np.isfinite(value) and np.isfinite(baseline) else np.nan
        if best is None or (np.isfinite(excess) and not excess <= best["excess"]):
            best = {
                "segment": segment,
                "psi": value,
                "ks": prepared.ks(values),
                "no_change_psi": baseline,
                "excess": excess,
            }
    # The all-series segment holds every current row, so ``best`` is set unless the current window
    # is empty, which drift_table does not handle (it failed on the None before).
    assert best is not None
    return best


def drift_table(
    reference: PreparedReference,
    current: dict[str, np.ndarray],
    thresholds: Thresholds = Thresholds(),
    gain: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Per drift feature, the segment (all series, or one department) where it moved most beyond
    its no-change PSI, with that segment's PSI, KS and no-change PSI, the feature's importance
    weight, its score and a status; largest score first (then largest PSI). Events are compared
    over all series and not judged."""
    n_ref = len(reference.window[CLUSTER_COLUMN])
    clusters, codes = np.unique(
        np.concatenate([reference.window[CLUSTER_COLUMN], current[CLUSTER_COLUMN]]), return_inverse=True
    )
    ref_items, cur_items = codes[:n_ref], codes[n_ref:]
    swaps = swap_draws(ref_items, cur_items, len(clusters))
    weights = importance_weights(gain or {})
    rows = []
    for spec in DRIFT_FEATURES:
        if spec.family in NOT_JUDGED_FAMILIES:
            prepared, values = (
                reference.features[(ALL_SERIES, spec.name)],
                np.asarray(current[spec.name], dtype=np.float64),
            )
            rows.append(
                {
                    "feature": spec.name,
                    "family": spec.family,
                    "segment": ALL_SERIES,
                    "psi": prepared.psi(values),
                    "ks": prepared.ks(values),
                    "no_change_psi": np.nan,
                    "importance": np.nan,
                    "score": np.nan,
                    "status": CALENDAR_STATUS,
                    "reference_rows": len(prepared.ordered),
                    "current_rows": int(np.isfinite(values).sum()),
                }
            )
            continue
        judged = _judged(reference, current, spec.name, ref_items, cur_items, swaps)
        excess = judged.pop("excess")
        score = weights[spec.name] * max(excess, 0.0) if np.isfinite(excess) else np.nan
        pooled = reference.features[(ALL_SERIES, spec.name)]
        rows.append(
            {
                "feature": spec.name,
                "family": spec.family,
                **judged,
                "importance": weights[spec.name],
                "score": score,
                "status": thresholds.status(score),
                "reference_rows": len(pooled.ordered),
                "current_rows": int(np.isfinite(np.asarray(current[spec.name], dtype=np.float64)).sum()),
            }
        )
    columns = [
        "feature",
        "family",
        "segment",
        "psi",
        "ks",
        "no_change_psi",
        "importance",
        "score",
        "status",
        "reference_rows",
        "current_rows",
    ]
    table = pd.DataFrame(rows, columns=columns).sort_values(["score", "psi"], ascending=False, na_position="last")
    return table.reset_index(drop=True)


def feature_drift(
    con: duckdb.DuckDBPyConnection,
    features: TableSource,
    reference: tuple[dt.date, dt.date],
    current: tuple[dt.date, dt.date],
    thresholds: Thresholds = Thresholds(),
    gain: dict[str, float] | None = None,
) -> pd.DataFrame:
    """The drift table between the released rows dated in ``reference`` ([start, end)) and those
    dated in ``current``, each feature weighted by its ``gain`` in the serving model when given."""
    ref = prepare(read_window(con, features, *reference))
    return drift_table(ref, read_window(con, features, *current), thresholds, gain)
