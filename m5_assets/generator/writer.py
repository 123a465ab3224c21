"""Write the Kaggle file set (calendar, prices, sales) for a named scale."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from tqdm import tqdm

from m5_assets.generator.calendar import build_calendar
from m5_assets.generator.demand import build_context, simulate_item
from m5_assets.generator.scales import Scale
from m5_assets.tables import SERIES_COLUMNS

# The last day of sales in Kaggle's evaluation file (d_1941).
M5_LAST_SALES_DAY = dt.date(2016, 5, 22)
# Kaggle's calendar runs 28 days past the sales, over the forecast horizon.
HORIZON_DAYS = 28
ID_COLUMNS = list(SERIES_COLUMNS)
# Kaggle's files quote nothing, not even the header.
_CSV_OPTIONS = pacsv.WriteOptions(quoting_style="none", include_header=False)


def _item_ids(scale: Scale) -> list[tuple[str, str, str]]:
    """(item_id, dept_id, cat_id) in Kaggle's order: category, department, item number."""
    items = []
    for dept, count in scale.items_per_dept.items():
        cat = dept.rsplit("_", 1)[0]
        items += [(f"{dept}_{k:03d}", dept, cat) for k in range(1, count + 1)]
    return items


def _write_csv(table: pa.Table, path: Path) -> None:
    """Write beside the target, then rename, so a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    with pa.OSFile(str(partial), "wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, sink, _CSV_OPTIONS)
    os.replace(partial, path)


def generate(
    scale: Scale,
    out_dir: str | os.PathLike,
    seed: int = 42,
    end_date: dt.date = M5_LAST_SALES_DAY,
    progress: bool = False,
) -> dict[str, Path]:
    """Write ``calendar.csv``, ``sell_prices.csv`` and ``sales_train_evaluation.csv``.

    The same scale, seed and end date give byte-identical files. Sales end on ``end_date``;
    the calendar runs 28 days further. A folder that already holds any CSV file is refused:
    the generator never writes over, or next to, somebody's data.
    """
    out = Path(out_dir)
    existing = sorted(p.name for p in out.glob("*") if p.suffix.lower() == ".csv") if out.is_dir() else []
    if existing:
        raise FileExistsError(
            f"{out} already holds {', '.join(existing)}: the demo set is written only into a folder with no CSV file"
        )
    out.mkdir(parents=True, exist_ok=True)
    start = end_date - dt.timedelta(days=scale.n_days - 1)
    states = list(scale.stores_per_state)
    stores = scale.store_ids
    calendar = build_calendar(start, scale.n_days + HORIZON_DAYS, states)
    ctx = build_context(calendar, scale.n_days, stores, seed)

    items = _item_ids(scale)
    units = np.empty((len(items), len(stores), scale.n_days), dtype=np.int32)
    prices = np.empty((len(items), len(stores), len(ctx.weeks)))
    for k, (_, _, cat) in enumerate(tqdm(items, desc=f"simulating {scale.name}", unit="item", disable=not progress)):
        units[k], prices[k] = simulate_item(ctx, [seed, 2, k], cat, stores)

    paths = {name: out / name for name in ("calendar.csv", "sell_prices.csv", "sales_train_evaluation.csv")}
    _write_csv(pa.Table.from_pandas(calendar, preserve_index=False), paths["calendar.csv"])
    _write_csv(_prices_table(items, stores, ctx.weeks, prices), paths["sell_prices.csv"])
    _write_sales(items, stores, units, paths["sales_train_evaluation.csv"], progress)
    return paths


def _prices_table(
    items: list[tuple[str, str, str]], stores: list[str], weeks: np.ndarray, prices: np.ndarray
) -> pa.Table:
    """Long price rows (store, item, week) for the weeks each series has a price, store-major."""
    store_idx, item_idx, week_idx = np.nonzero(~np.isnan(prices.transpose(1, 0, 2)))
    item_names = np.array([i[0] for i in items])
    return pa.table(
        {
            "store_id": np.array(stores)[store_idx],
            "item_id": item_names[item_idx],
            "wm_yr_wk": weeks[week_idx].astype(np.int64),
            "sell_price": prices[item_idx, store_idx, week_idx],
        }
    )


def _write_sales(
    items: list[tuple[str, str, str]], stores: list[str], units: np.ndarray, path: Path, progress: bool
) -> None:
    """The wide sales file, one row per item-store in Kaggle's store-major order."""
    partial = path.with_name(path.name + ".partial")
    n_days = units.shape[2]
    schema = pa.schema([(c, pa.string()) for c in ID_COLUMNS] + [(f"d_{k}", pa.int32()) for k in range(1, n_days + 1)])
    with pa.OSFile(str(partial), "wb") as sink, pacsv.CSVWriter(sink, schema, write_options=_CSV_OPTIONS) as writer:
        sink.write((",".join(schema.names) + "\n").encode())
        for s, store in enumerate(tqdm(stores, desc="writing sales", unit="store", disable=not progress)):
            state = store.split("_")[0]
            columns = {
                "id": [f"{item}_{store}_evaluation" for item, _, _ in items],
                "item_id": [i[0] for i in items],
                "dept_id": [i[1] for i in items],
                "cat_id": [i[2] for i in items],
                "store_id": [store] * len(items),
                "state_id": [state] * len(items),
            }
            day_columns = {f"d_{k + 1}": units[:, s, k] for k in range(n_days)}
            writer.write_table(pa.table({**columns, **day_columns}, schema=schema))
    os.replace(partial, path)
