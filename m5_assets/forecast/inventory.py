"""A replenishment plan from one forecast partition: per item-store, lead-time demand and its
uncertainty, safety stock, reorder point, order-up-to level, economic order quantity and the
days of cover they give.

Uncertainty comes from the forecast's own calibration: each day's ``sigma`` is the standard
deviation of the errors the interval calibration saw at forecasts of that size (in its bin, scaled
to the forecast, see ``intervals``). It is not read off an interval: a slow item's daily 80 %
interval is often [0, 0] although it sells now and then, and one offset served every large
forecast alike. Days are taken as independent, so the lead time's deviation is the root of the
summed daily variances (errors that persist across days make this an understatement; the
interval calibration's own coverage, scored in ``forecast_accuracy``, is the check on it). A
partition written before forecasts carried ``sigma`` falls back to ``(hi_80 - forecast) / z(0.90)``.
With ``z`` the normal quantile of the service level (the chance of no stock-out in a
replenishment cycle):

- safety stock ``z * sigma_L`` over the lead time ``L``; reorder point = demand over ``L`` + it;
- order-up-to level, for a review every ``R`` days: demand over ``L + R`` + ``z * sigma_(L+R)``;
- economic order quantity ``sqrt(2 * annual demand * ordering cost / (holding rate * unit price))``,
  annual demand being the forecast's mean daily demand times 365;
- days of cover: (safety stock + EOQ) / mean daily demand, what a delivery of one EOQ at the
  reorder point lasts.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from m5_assets.features.catalog import HORIZON
from m5_assets.forecast.plausibility import floored

Z_80_UPPER = NormalDist().inv_cdf(0.90)  # the upper bound of a central 80 % interval
RECORD_MULTIPLE = 2.0  # how far past its record day a series' plan may reach before it is refused
OVERRIDE_KEYS = ("store_id", "dept_id")


@dataclass(frozen=True)
class Policy:
    """How an item-store is replenished."""

    lead_time_days: int = 7
    review_days: int = 7
    service_level: float = 0.95
    ordering_cost: float = 25.0  # per order, in the prices' currency
    holding_rate: float = 0.25  # yearly holding cost as a share of the unit price

    def problems(self) -> dict[str, str]:
        """Each setting outside its rule, with the rule."""
        found = {}
        if not 1 <= self.lead_time_days < HORIZON:
            found["lead_time_days"] = f"must be a whole number of days from 1 to {HORIZON - 1}"
        if not 0 <= self.review_days or self.lead_time_days + self.review_days > HORIZON:
            found["review_days"] = (
                f"must be 0 or more, with lead_time_days + review_days at most {HORIZON} (the forecast's horizon)"
            )
        if not 0.5 <= self.service_level < 1:
            found["service_level"] = "must be at least 0.5 and below 1"
        if not self.ordering_cost >= 0:
            found["ordering_cost"] = "must be 0 or more"
        if not self.holding_rate > 0:
            found["holding_rate"] = "must be above 0"
        return found


_TYPES = {f.name: (int if f.type in ("int", int) else float) for f in fields(Policy)}


def read_overrides(path: Path, default: Policy) -> pd.DataFrame:
    """Per store, department or store x department settings from a CSV with the columns
    ``store_id``, ``dept_id`` and any of ``Policy``'s fields; an empty cell keeps the default.

    Every bad cell is named (file, line, column, rule) in one ValueError; nothing is half-read.
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        unknown = [c for c in header if c not in (*OVERRIDE_KEYS, *_TYPES)]
        if unknown or not set(OVERRIDE_KEYS) & set(header):
            raise ValueError(
                f"{path.name}, line 1: columns must be store_id and/or dept_id and any of {list(_TYPES)}"
                + (f"; unknown: {unknown}" if unknown else "")
            )
        rows, errors = [], []
        seen: dict[tuple[str, ...], int] = {}
        for line, raw in enumerate(reader, start=2):
            if None in raw:
                errors.append(f"{path.name}, line {line}: more cells than the header's {len(header)}")
                continue
            keys = tuple((raw.get(k) or "").strip() for k in OVERRIDE_KEYS)
            if not any(keys):
                errors.append(
                    f"{path.name}, line {line}, columns store_id/dept_id: at least one must name a store or department"
                )
            if keys in seen:
                errors.append(f"{path.name}, line {line}: store_id/dept_id {keys} repeat line {seen[keys]}")
            seen[keys] = line
            values = asdict(default)
            for column, kind in _TYPES.items():
                text = (raw.get(column) or "").strip()
                if not text:
                    continue
                try:
                    number = float(text)
                    if kind is int and number != int(number):
                        raise ValueError
                    values[column] = kind(number)
                except ValueError:
                    errors.append(
                        f"{path.name}, line {line}, column '{column}': {text!r} is not a {'whole ' if kind is int else ''}number"
                    )
            policy = Policy(**values)
            errors += [
                f"{path.name}, line {line}, column '{c}': {rule} (got {values[c]!r})"
                for c, rule in policy.problems().items()
            ]
            rows.append({"store_id": keys[0] or None, "dept_id": keys[1] or None, **asdict(policy)})
    if errors:
        raise ValueError("inventory overrides rejected:\n" + "\n".join(errors))
    return pd.DataFrame(rows, columns=[*OVERRIDE_KEYS, *_TYPES])


def policies_for(series: pd.DataFrame, default: Policy, overrides: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each series' policy (rows as in ``series``: store_id, dept_id): the most specific override
    (store x department, then department, then store), else ``default``."""
    out = pd.DataFrame(
        {name: np.full(len(series), value) for name, value in asdict(default).items()}, index=series.index
    )
    if overrides is None or overrides.empty:
        return out
    by_store = overrides[overrides["store_id"].notna() & overrides["dept_id"].isna()]
    by_dept = overrides[overrides["store_id"].isna() & overrides["dept_id"].notna()]
    both = overrides[overrides["store_id"].notna() & overrides["dept_id"].notna()]
    for matches, keys in ((by_store, ["store_id"]), (by_dept, ["dept_id"]), (both, ["store_id", "dept_id"])):
        if matches.empty:
            continue
        found = series[keys].astype(str).merge(matches[[*keys, *_TYPES]], on=keys, how="left").set_index(series.index)
        hit = found[list(_TYPES)[0]].notna()
        out.loc[hit, list(_TYPES)] = found.loc[hit, list(_TYPES)]
    return out.astype({name: kind for name, kind in _TYPES.items()})


def plan(bottom: pd.DataFrame, unit_price: pd.Series, policies: pd.DataFrame) -> pd.DataFrame:
    """The plan of every series in ``bottom`` (a forecast partition's rows: the series columns,
    horizon, forecast, sigma or else hi_80); ``unit_price`` by id; ``policies`` one row per series id (index)."""
    spread = "sigma" if "sigma" in bottom else "hi_80"
    wide = bottom.pivot_table(index="id", columns="horizon", values=["forecast", spread], aggfunc="first")
    forecast = wide["forecast"].reindex(columns=range(1, HORIZON + 1)).fillna(0.0).to_numpy()
    sigma = wide[spread].reindex(columns=range(1, HORIZON + 1)).fillna(0.0).to_numpy()
    if spread == "hi_80":
        sigma = np.maximum(sigma - forecast, 0.0) / Z_80_UPPER
    ids = wide.index
    policy = policies.loc[ids]
    lead, review = policy["lead_time_days"].to_numpy(), policy["review_days"].to_numpy()
    z = np.array([NormalDist().inv_cdf(p) for p in policy["service_level"].to_numpy()])
    days = np.arange(1, HORIZON + 1)
    within_lead = days[None, :] <= lead[:, None]
    within_cycle = days[None, :] <= (lead + review)[:, None]
    lead_demand = (forecast * within_lead).sum(axis=1)
    lead_sigma = np.sqrt((sigma**2 * within_lead).sum(axis=1))
    cycle_demand = (forecast * within_cycle).sum(axis=1)
    cycle_sigma = np.sqrt((sigma**2 * within_cycle).sum(axis=1))
    daily = forecast.mean(axis=1)
    price = unit_price.reindex(ids).to_numpy(dtype=np.float64)
    eoq = np.sqrt(2 * daily * 365 * policy["ordering_cost"].to_numpy() / (policy["holding_rate"].to_numpy() * price))
    safety = z * lead_sigma
    hierarchy = (
        bottom.drop_duplicates("id")
        .set_index("id")
        .loc[ids, [c for c in ("item_id", "dept_id", "cat_id", "store_id", "state_id") if c in bottom]]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(daily > 0, (safety + eoq) / daily, np.inf)
    return hierarchy.assign(
        lead_time_days=lead,
        review_days=review,
        service_level=policy["service_level"].to_numpy(),
        unit_price=price,
        mean_daily_demand=daily,
        lead_time_demand=lead_demand,
        lead_time_sigma=lead_sigma,
        safety_stock=safety,
        reorder_point=lead_demand + safety,
        order_up_to=cycle_demand + z * cycle_sigma,
        eoq=eoq,
        days_of_cover=cover,
    ).reset_index()


def at_service_level(planned: pd.DataFrame, service_level: float) -> pd.DataFrame:
    """``planned`` (``plan``'s rows) with safety stock and reorder point recomputed for another
    service level: what the dashboard's slider shows, by the same rule as the plan."""
    z = NormalDist().inv_cdf(service_level)
    safety = z * planned["lead_time_sigma"]
    return planned.assign(
        service_level=service_level, safety_stock=safety, reorder_point=planned["lead_time_demand"] + safety
    )


def orders_beyond_history(planned: pd.DataFrame, highest_day: pd.Series) -> pd.DataFrame:
    """Plan rows (``plan``'s) asking for more than the series' own history could justify.

    The bound is ``RECORD_MULTIPLE`` x the series' highest day (``highest_day`` by id: units sold
    before the forecast date, at least ``plausibility.FLOOR``) on every day: the mean daily demand (and so the EOQ,
    which grows with it) above it, or the reorder point or order-up-to level above it over the
    lead time, resp. lead time plus review. A forecast blown up by bad data shows here before any
    planner reads it; a healthy one, however uncertain, does not. Returns id, the column, its
    value and its bound, largest ratio first.
    """
    record = floored(highest_day, pd.Index(planned["id"])) * RECORD_MULTIPLE
    bounds = {
        "mean_daily_demand": record,
        "reorder_point": record * planned["lead_time_days"].to_numpy(),
        "order_up_to": record * (planned["lead_time_days"] + planned["review_days"]).to_numpy(),
    }
    found = [
        pd.DataFrame({"id": planned["id"], "column": column, "value": planned[column].to_numpy(), "bound": bound})[
            planned[column].to_numpy() > bound
        ]
        for column, bound in bounds.items()
    ]
    out = pd.concat(found, ignore_index=True)
    return out.assign(ratio=out["value"] / out["bound"]).sort_values("ratio", ascending=False, ignore_index=True)
