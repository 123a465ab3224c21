"""Days far outside their series' history, in two tiers.

**A data error** is a day no real shop reaches: more than ``ABSURD_UNITS`` units and more than
``ABSURD_MULTIPLE`` x the series' 99th percentile of its other non-zero days. The raw sales check
refuses it, naming the file's line and column; nothing downstream is built from it. On the 280
genuine M5 series with their whole history (``../shared/data/m5/real_280``) the largest day is 626
units and the largest ratio of a day to its series' 99th percentile is 120 (HOUSEHOLD_2_062 at
TX_1 sold 601 on 2013-06-05); over all 30,490 series' 28 days after d_1913 the largest day is 196.
So the bound leaves a margin of eight over the most extreme genuine day and still trips on what a
broken export writes (10**9, or a price typed into the units column).

**An outlier for modelling** is a day above ``CAP_MULTIPLE`` x (the mean of the capped days of the
year before it, counted from the series' first sale, + 1), once the series has sold for
``CAP_MIN_HISTORY`` days. Features and the training label read it capped at that bound (a
winsorized copy; the long table keeps what was sold), so one freak day cannot dominate a year of
rolling spreads or a model's loss. No warning: a capped day is recorded in the feature store's
metadata, and a user keeps known genuine days uncapped by listing them (``read_genuine_days``).
The bound is computed day by day from earlier days only, so capping never lets a later sale
change an earlier feature (point-in-time). On ``real_280`` it caps 5 of 543,480 series-days
(601 units to 58 for the day above, the rest by less than a half), on ``real_subset`` none.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

ABSURD_UNITS = 10_000
ABSURD_MULTIPLE = 1_000.0
REFERENCE_QUANTILE = 0.99

CAP_MULTIPLE = 50.0
CAP_WINDOW = 364
CAP_MIN_HISTORY = 28

GENUINE_DAYS_COLUMNS = ("item_id", "store_id", "date")


def data_error_bound(series: np.ndarray) -> float:
    """The most units one day of this series (its days' units, NaN for missing) may hold.

    The reference is the 99th percentile of its non-zero days of at most ``ABSURD_UNITS`` (so a
    broken day cannot raise its own bound, however few days the series sold on); a series selling
    more than that on most of its non-zero days (wholesale) is judged on all of them.
    """
    values = np.nan_to_num(np.asarray(series, dtype=np.float64))
    selling = values[values > 0]
    ordinary = selling[selling <= ABSURD_UNITS]
    reference = ordinary if 2 * len(ordinary) > len(selling) else selling
    if not len(reference):
        return float(ABSURD_UNITS)
    return max(
        float(ABSURD_UNITS), ABSURD_MULTIPLE * float(np.quantile(reference, REFERENCE_QUANTILE, method="inverted_cdf"))
    )


def absurd_days(units: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows and days (series x days matrix, NaN for missing) of data errors, with each one's bound
    (``data_error_bound``)."""
    values = np.nan_to_num(np.asarray(units, dtype=np.float64))
    found_rows, found_days, bounds = [], [], []
    # Only a series with a day above the absolute floor can break the rule.
    for row in np.flatnonzero((values > ABSURD_UNITS).any(axis=1)):
        bound = data_error_bound(values[row])
        days = np.flatnonzero(values[row] > bound)
        found_rows += [row] * len(days)
        found_days += days.tolist()
        bounds += [bound] * len(days)
    return np.asarray(found_rows, dtype=np.int64), np.asarray(found_days, dtype=np.int64), np.asarray(bounds)


def cap_outliers(units: np.ndarray, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``units`` (series x days, NaN for missing) with outliers for modelling capped, and a mask of
    the capped days. ``keep``, a mask of the same shape, names days never to cap."""
    n_rows, n_days = units.shape
    # Day-major, so each step of the walk over days reads and writes contiguous memory; masked
    # sums (np.where) instead of indexing by mask: twice as fast at full scale, the same values.
    by_day = np.array(np.transpose(units), dtype=np.float64, order="C")
    present_by_day = ~np.isnan(by_day)
    keep_by_day = None if keep is None else np.ascontiguousarray(np.transpose(keep))
    was_capped = np.zeros((n_days, n_rows), dtype=bool)
    counted = np.zeros((n_days, n_rows), dtype=bool)  # days inside a series' history (from its first sale)
    total, count = np.zeros(n_rows), np.zeros(n_rows)
    selling = np.zeros(n_rows, dtype=bool)
    for day in range(n_days):
        if day >= CAP_WINDOW:  # the day leaving the year before
            leaving = counted[day - CAP_WINDOW]
            total -= np.where(leaving, by_day[day - CAP_WINDOW], 0.0)
            count -= leaving
        values, present = by_day[day], present_by_day[day]
        bound = CAP_MULTIPLE * (total / np.maximum(count, 1.0) + 1.0)
        over = present & (count >= CAP_MIN_HISTORY) & (values > bound)
        if keep_by_day is not None:
            over &= ~keep_by_day[day]
        if over.any():
            values[over] = np.floor(bound[over])
            was_capped[day, over] = True
        selling |= present & (values > 0)
        counted[day] = now = selling & present
        total += np.where(now, values, 0.0)
        count += now
    return np.ascontiguousarray(np.transpose(by_day)), np.ascontiguousarray(np.transpose(was_capped))


def read_genuine_days(path: Path, series: pd.DataFrame, dates: pd.DatetimeIndex) -> np.ndarray:
    """Known genuine days from a CSV with columns item_id, store_id, date (YYYY-MM-DD), as a
    series x days mask aligned on ``series`` (columns item_id, store_id) and ``dates``.

    Every line that names no series or day of the data is an error naming the file and line:
    a day kept uncapped by mistake is better refused than silently ignored.
    """
    mask = np.zeros((len(series), len(dates)), dtype=bool)
    row_of = {(str(i), str(s)): k for k, (i, s) in enumerate(zip(series["item_id"], series["store_id"], strict=True))}
    day_of = {d.date().isoformat(): k for k, d in enumerate(pd.DatetimeIndex(dates))}
    errors = []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != GENUINE_DAYS_COLUMNS:
            raise ValueError(
                f"{path.name}, line 1: columns must be {', '.join(GENUINE_DAYS_COLUMNS)}, found {reader.fieldnames!r}"
            )
        for line, cells in enumerate(reader, start=2):
            key = (cells["item_id"], cells["store_id"])
            if key not in row_of:
                errors.append(
                    f"{path.name}, line {line}, columns 'item_id', 'store_id': no series {key[0]!r} at store {key[1]!r}"
                )
            elif cells["date"] not in day_of:
                errors.append(
                    f"{path.name}, line {line}, column 'date': {cells['date']!r} is not a day of the sales data (YYYY-MM-DD)"
                )
            else:
                mask[row_of[key], day_of[cells["date"]]] = True
    if errors:
        raise ValueError("known genuine days rejected:\n" + "\n".join(errors))
    return mask
