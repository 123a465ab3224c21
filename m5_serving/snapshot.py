"""One forecast partition held in memory so that a lookup is a dictionary get and an array index.

Built aside from the warehouse files (bottom forecasts, level sums, the issuing model's card, the
newest feature rows) and validated before it may serve: a partition with a missing column, an
empty file, a negative forecast, a lower bound above its upper bound, a series without its 28
days, or rows issued on another day than the partition's folder says is refused with the reason.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from m5_assets import tables
from m5_assets.reader import WarehouseReader
from m5_assets.tables import LEVEL_KEYS, level_key

HORIZON = 28
INTERVALS = (50, 80, 95)
VALUE_COLUMNS = ("forecast", *(f"{side}_{level}" for level in INTERVALS for side in ("lo", "hi")))


class SnapshotRefused(ValueError):
    """A partition that must not serve; the message says why."""


@dataclass(frozen=True)
class Series:
    """Where one series' 28 days sit in the snapshot's value array."""

    row: int
    id: str
    item_id: str
    store_id: str
    dept_id: str
    cat_id: str
    state_id: str

    def hierarchy(self) -> dict[str, str]:
        """The id and hierarchy columns, by name."""
        return {name: getattr(self, name) for name in tables.SERIES_COLUMNS}


@dataclass
class Snapshot:
    forecast_date: dt.date
    model_version: str
    mlflow_run_id: str
    values: np.ndarray  # series x 28 days x VALUE_COLUMNS
    series: dict[tuple[str, str], Series]  # (item_id, store_id) -> Series
    level_values: dict[int, np.ndarray]  # level -> keys x 28 x VALUE_COLUMNS
    level_keys: dict[int, dict[str, int]]  # level -> key -> row
    rows: int
    loaded_at: float = field(default_factory=time.time)
    load_seconds: float = 0.0
    source_mtime: float = 0.0
    items: tuple[str, ...] = ()
    stores: tuple[str, ...] = ()
    remote: ClassVar[bool] = False  # True where a lookup asks another server (the online store)

    @property
    def last_date(self) -> dt.date:
        return self.forecast_date + dt.timedelta(days=HORIZON - 1)

    def covers(self, day: dt.date) -> bool:
        return self.forecast_date <= day <= self.last_date

    def age_seconds(self) -> float:
        return time.time() - self.loaded_at

    def lookup(self, item_id: str, store_id: str) -> tuple[Series, np.ndarray] | None:
        """The series and its 28 x VALUE_COLUMNS days, or None when the snapshot lacks it."""
        found = self.series.get((item_id, store_id))
        return None if found is None else (found, self.values[found.row])

    def prefetched(self, pairs: list[tuple[str, str]]) -> Snapshot:
        """The snapshot to answer many lookups of (item_id, store_id) from: itself, in memory."""
        return self

    def level(self, level: int) -> tuple[dict[str, int], np.ndarray] | None:
        """An aggregation level's keys (key -> row) and values, or None when it is not held."""
        keys = self.level_keys.get(level)
        return None if keys is None else (keys, self.level_values[level])


def _validated(frame: pd.DataFrame, name: str, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SnapshotRefused(f"{name}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise SnapshotRefused(f"{name}: the file holds no rows")
    values = frame[list(VALUE_COLUMNS)].to_numpy(np.float64)
    if not np.isfinite(values).all():
        raise SnapshotRefused(f"{name}: forecasts or bounds that are not finite numbers")
    if (values < 0).any():
        bad = frame.loc[(values < 0).any(axis=1)].iloc[0]
        raise SnapshotRefused(f"{name}: negative forecast or bound, e.g. {bad.get('id', '')} on {bad['date']}")
    for level in INTERVALS:
        inverted = frame[f"lo_{level}"] > frame[f"hi_{level}"]
        if inverted.any():
            bad = frame.loc[inverted].iloc[0]
            raise SnapshotRefused(f"{name}: lo_{level} > hi_{level}, e.g. {bad.get('id', '')} on {bad['date']}")
    horizons = frame["horizon"].to_numpy()
    if horizons.min() < 1 or horizons.max() > HORIZON:
        raise SnapshotRefused(f"{name}: horizons must run 1 .. {HORIZON}")


def _issued_on(frame: pd.DataFrame, name: str, day: dt.date) -> None:
    """Every row's date is its partition's day plus its horizon less one: a partition copied under
    another date's folder would otherwise serve its forecasts shifted by the difference."""
    dates = pd.to_datetime(frame["date"])
    issued = dates - pd.to_timedelta(frame["horizon"].astype("int64") - 1, unit="D")
    wrong = issued != pd.Timestamp(day)
    if wrong.any():
        bad = frame.loc[wrong].iloc[0]
        found = ", ".join(str(d.date()) for d in issued[wrong].drop_duplicates().sort_values()[:3])
        raise SnapshotRefused(
            f"{name}: {int(wrong.sum())} of {len(frame)} rows are forecasts issued on {found}, not on the "
            f"folder's {day} (e.g. {bad.get('id', bad.get('level', ''))} dated {pd.Timestamp(bad['date']).date()} "
            f"at horizon {bad['horizon']}); a partition copied under another date's folder?"
        )


def _cube(frame: pd.DataFrame, group: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows grouped by ``group`` into a groups x 28 x values array, each group holding 28 days,
    and each group's first row (its key and hierarchy columns)."""
    frame = frame.sort_values([*group, "horizon"], kind="stable")
    counts = frame.groupby(group, sort=False, dropna=False).size()
    if (counts != HORIZON).any():
        raise SnapshotRefused(f"every series must have its {HORIZON} days; {int((counts != HORIZON).sum())} do not")
    keys = frame.iloc[::HORIZON].reset_index(drop=True)
    return keys, frame[list(VALUE_COLUMNS)].to_numpy(np.float64).reshape(len(keys), HORIZON, len(VALUE_COLUMNS))


def build_snapshot(reader: WarehouseReader, day: dt.date) -> Snapshot:
    """The partition of ``day`` as a snapshot, or SnapshotRefused naming what is wrong."""
    started = time.perf_counter()
    path = tables.FORECASTS.path(reader.root, day)
    try:
        bottom = reader.forecasts(day)
        levels = reader.forecast_levels(day)
    except FileNotFoundError as error:
        raise SnapshotRefused(str(error)) from error
    except Exception as error:  # an unreadable file is a refusal, not a crash of the server
        raise SnapshotRefused(f"{path}: unreadable ({type(error).__name__}: {error})") from error
    required = (*tables.SERIES_COLUMNS, "date", "horizon", *VALUE_COLUMNS, "model_version")
    for frame, name, columns in (
        (bottom, f"forecasts/forecast_date={day}", required),
        (levels, f"forecast_levels/forecast_date={day}", ("level", "date", "horizon", *VALUE_COLUMNS)),
    ):
        _validated(frame, name, columns)
        _issued_on(frame, name, day)

    keys, values = _cube(bottom, ["item_id", "store_id"])
    hierarchy = keys[list(tables.SERIES_COLUMNS)].astype(str).to_dict(orient="records")
    series = {(ids["item_id"], ids["store_id"]): Series(row, **ids) for row, ids in enumerate(hierarchy)}

    level_values, level_keys = {}, {}
    for level, part in levels.groupby("level", sort=True):
        level = int(level)
        group = list(LEVEL_KEYS[level]) or ["level"]
        part_keys, part_values = _cube(part, group)
        level_values[level] = part_values
        level_keys[level] = {level_key(level, row): i for i, row in enumerate(part_keys[group].to_dict("records"))}

    versions = bottom["model_version"].astype(str).unique()
    return Snapshot(
        forecast_date=day,
        model_version=str(versions[0]),
        mlflow_run_id=str(bottom["mlflow_run_id"].iloc[0]) if "mlflow_run_id" in bottom else "",
        values=values,
        series=series,
        level_values=level_values,
        level_keys=level_keys,
        rows=len(bottom) + len(levels),
        load_seconds=time.perf_counter() - started,
        source_mtime=path.stat().st_mtime,
        items=tuple(sorted(keys["item_id"].unique())),
        stores=tuple(sorted(keys["store_id"].unique())),
    )
