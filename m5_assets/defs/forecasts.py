"""Daily forecast partitions, their hierarchy aggregates, and their accuracy once actuals arrive."""
# Dagster resolves the context and resource types from real annotations: none are postponed here.

import datetime as dt

import dagster as dg
import pandas as pd
from mlflow.tracking import MlflowClient

from m5_assets import tables
from m5_assets.defs.check_log import recorded
from m5_assets.defs.metadata import facts_metadata
from m5_assets.defs.resources import M5Data
from m5_assets.defs.results import StepContext
from m5_assets.features.build import FeatureInputs
from m5_assets.features.catalog import HORIZON
from m5_assets.forecast import publish
from m5_assets.forecast.accuracy import publish_scored, unscorable
from m5_assets.forecast.plausibility import FLOOR, MULTIPLE
from m5_assets.forecast.publish import BAND_SHOWN, Published, catalog_warnings
from m5_assets.intervals import COVERAGES

ACCURACY_CHECK = "accuracy_in_line_with_history"
LEVELS_ADD_UP = "levels_add_up"
WITHIN_HISTORY = "forecasts_within_history"
# A scored partition's own figures, shown on it in the UI.
SCORE_METADATA = (
    "wrmsse",
    "seasonal_naive_wrmsse",
    "moving_average_28_wrmsse",
    "mean_rmsse",
    "mae",
    "bias_pct",
    *[f"coverage_{c}" for c in COVERAGES],
)
# One run per 30 partitions: a backfill reads the feature store once per run instead of once per
# day, and a failure costs at most 30 partitions' work to retry.
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=30)


def run_days(context: StepContext) -> list[dt.date]:
    """The forecast dates of this run: one, or a backfill's range."""
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + dt.timedelta(days=k) for k in range((end - first).days)]


def serving_for(client: MlflowClient, days: list[dt.date]) -> tuple[list, dict]:
    """Every registered version, and the promoted one that serves each day."""
    try:
        return publish.serving_for(client, days)
    except LookupError as error:
        raise dg.Failure(str(error)) from error


def attach(context: dg.AssetExecutionContext, done: Published) -> None:
    """Each published partition's own metadata, on the partition in the UI."""
    for asset, partitions in done.partitions.items():
        for key, (facts, about) in sorted(partitions.items()):
            metadata = facts_metadata(facts, tables.named(asset).describe) | about
            context.add_asset_metadata(metadata, asset_key=asset, partition_key=key)


def log_shadows(context: StepContext, shadows: dict[dt.date, str]) -> None:
    if shadows:
        issued_by = sorted(set(shadows.values()))
        context.log.info(f"challengers issued in shadow: {issued_by} for {min(shadows)} .. {max(shadows)}")


def levels_check(
    m5_data: M5Data, context: StepContext, days: list[dt.date], problems: list[str]
) -> dg.AssetCheckResult:
    return recorded(
        m5_data,
        context,
        tables.FORECAST_LEVELS.name,
        LEVELS_ADD_UP,
        dg.AssetCheckResult(
            asset_key=tables.FORECAST_LEVELS.name,
            check_name=LEVELS_ADD_UP,
            passed=not problems,
            description="; ".join(problems[:10])
            or f"levels 1-11 add up to the bottom level on every day ({days[0]} .. {days[-1]})",
            metadata={"partitions_off": len({p.split(":")[0] for p in problems})},
        ),
    )


def band_result(days: list[dt.date], judged: list[pd.DataFrame]) -> dg.AssetCheckResult:
    """The band check over a run's days from ``Published.band``: which series on which days are
    beyond it, the farthest out in a table, and the bounds. It warns: the forecast is never changed."""
    shown = [
        "id",
        "forecast_date",
        "forecast_28d_mean",
        "highest_28d_mean",
        "month_ratio",
        "forecast_max_day",
        "highest_day",
        "day_ratio",
    ]
    # No day published (every one's levels were off): nothing was issued to judge.
    rows = pd.concat(judged, ignore_index=True) if judged else pd.DataFrame(columns=[*shown, "beyond"])
    rows = rows.assign(worst=rows[["month_ratio", "day_ratio"]].max(axis=1)).sort_values(
        "worst", ascending=False, kind="stable"
    )
    beyond = rows[rows["beyond"].astype(bool)]
    table = rows.drop_duplicates("id").head(BAND_SHOWN)[shown]
    span = f"{days[0]} .. {days[-1]}"
    if len(beyond):
        named = "; ".join(
            f"{r.id} on {r.forecast_date}: 28-day mean {r.forecast_28d_mean:,.2f} ({r.month_ratio:.1f} x its highest 28-day mean), "
            f"top day {r.forecast_max_day:,.2f} ({r.day_ratio:.1f} x its highest day)"
            for r in beyond.head(BAND_SHOWN).itertuples()
        )
        description = (
            f"{beyond['id'].nunique()} series forecast beyond {MULTIPLE:g} x their own history on "
            f"{beyond['forecast_date'].nunique()} of {len(days)} day(s) ({span}), published as issued: {named}"
        )
    else:
        description = f"every series' forecast within {MULTIPLE:g} x its highest 28-day mean and highest day before the forecast date ({span})"
    return dg.AssetCheckResult(
        asset_key=tables.FORECASTS.name,
        check_name=WITHIN_HISTORY,
        passed=beyond.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=description[:4000],
        metadata={
            "series_beyond": int(beyond["id"].nunique()),
            "days_with_series_beyond": int(beyond["forecast_date"].nunique()),
            "farthest_out": dg.MetadataValue.md(table.round(2).to_markdown(index=False) if len(table) else "no series"),
            "bounds": f"28-day forecast mean <= {MULTIPLE:g} x the highest 28-day mean of units before the forecast date; "
            f"every forecast day <= {MULTIPLE:g} x the highest day before it; each highest taken as at least {FLOOR:g} unit a day",
        },
    )


def band_check(
    m5_data: M5Data, context: StepContext, days: list[dt.date], judged: list[pd.DataFrame]
) -> dg.AssetCheckResult:
    return recorded(m5_data, context, tables.FORECASTS.name, WITHIN_HISTORY, band_result(days, judged))


def log_issued(context: StepContext, summary: list[dict], problems: list[str]) -> None:
    if summary:
        context.log.info("issued:\n" + pd.DataFrame(summary).to_markdown(index=False))
    for warning in catalog_warnings(summary):
        context.log.warning(warning)
    if problems:
        # The days whose levels did not add up were not published: the run fails and says which.
        raise dg.Failure(f"{LEVELS_ADD_UP} failed, nothing published for those days: " + "; ".join(problems[:10]))


FORECASTS_DESCRIPTION = (
    f"Forecasts for the {HORIZON} days from the partition's date D, issued with sales before D "
    "only, by the newest promoted model whose cutoff is not after D. Point forecast and "
    f"{'/'.join(map(str, COVERAGES))} % intervals (conformal residuals of the model's "
    "validation window) per series and day. Each partition is a hive folder forecast_date=D, "
    "published atomically. Partitions start at the first model cutoff (a year of lags and a "
    "validation window after the first sales day; `M5_FORECAST_START` moves it) and run to the day "
    "after the last sales day. Only the days someone issued are filled (`m5 run`: the newest and "
    "a week of backtest), so a low fill rate is expected; backfill a range to fill it."
)
LEVELS_DESCRIPTION = f"{tables.FORECAST_LEVELS.description} Written with the forecasts of the same date."
LEVELS_CHECK_SPEC = dg.AssetCheckSpec(
    LEVELS_ADD_UP,
    asset=tables.FORECAST_LEVELS.name,
    blocking=True,
    description="every level's forecasts add up to the bottom level's on every day",
)
BAND_CHECK_SPEC = dg.AssetCheckSpec(
    WITHIN_HISTORY,
    asset=tables.FORECASTS.name,
    blocking=False,
    description=f"warns, naming them, of series whose 28-day forecast mean is above {MULTIPLE:g} x their highest 28-day mean "
    f"before the forecast date, or a forecast day above {MULTIPLE:g} x their highest day (each taken as at least {FLOOR:g} unit): "
    "a forecast blown up by bad data or a fault shows here. It only reports: the forecast is published and served as issued",
)
CHECK_SPECS = [LEVELS_CHECK_SPEC, BAND_CHECK_SPEC]


ACCURACY_CHECK_SPEC = dg.AssetCheckSpec(
    ACCURACY_CHECK,
    asset=tables.FORECAST_ACCURACY.name,
    description="warns when WRMSSE is worse than seasonal naive's on the same days, rises more than 10 % "
    "above its trailing 28-partition mean, or 95 % interval coverage is more than 5 points from 95",
)
ACCURACY_DESCRIPTION = (
    f"The forecast issued on D scored once all its {HORIZON} days have actuals: WRMSSE overall "
    "and per level, RMSE, MAE, bias and interval coverage, next to seasonal naive issued on D."
)
ACCURACY_INPUTS = (
    tables.FORECASTS.name,
    tables.FORECAST_LEVELS.name,
    tables.SALES_LONG.name,
    tables.RAW_CALENDAR.name,
    tables.RAW_SELL_PRICES.name,
)


def refuse_unscorable(inputs: FeatureInputs, days: list[dt.date]) -> None:
    """Fail, saying when they can be scored, if some of ``days`` lack actuals on one of their days."""
    waiting = unscorable(inputs, days)
    if waiting is not None:
        raise dg.Failure(waiting)


def publish_scores(
    context: dg.AssetExecutionContext, m5_data: M5Data, days: list[dt.date], rows: list[dict], problems: dict
) -> dg.AssetCheckResult:
    """Write each scored partition with its metadata in the UI; the check's recorded result."""
    for row, facts in publish_scored(m5_data.storage, rows):
        own = {name: round(float(row[name]), 4) for name in SCORE_METADATA}
        beside = {
            "shadow_model_version": row["shadow_model_version"] or "none",
            "shadow_wrmsse": round(float(row["shadow_wrmsse"]), 4),
            "model_version": row["model_version"],
            "warnings": "; ".join(problems.get(row["forecast_date"], [])) or "none",
        }
        context.add_asset_metadata(
            facts_metadata(facts, tables.FORECAST_ACCURACY.describe) | own | beside,
            asset_key=tables.FORECAST_ACCURACY.name,
            partition_key=row["forecast_date"].isoformat(),
        )
    shown = ["forecast_date", *SCORE_METADATA]
    context.log.info("scored:\n" + pd.DataFrame(rows)[shown].round(4).to_markdown(index=False))
    return recorded(
        m5_data,
        context,
        tables.FORECAST_ACCURACY.name,
        ACCURACY_CHECK,
        dg.AssetCheckResult(
            asset_key=tables.FORECAST_ACCURACY.name,
            check_name=ACCURACY_CHECK,
            passed=not problems,
            severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(f"{d}: {'; '.join(p)}" for d, p in problems.items())
            or f"every scored partition in line ({days[0]} .. {days[-1]})",
            metadata={"partitions_with_warnings": len(problems)},
        ),
    )
