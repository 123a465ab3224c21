"""Daily forecast partitions, their hierarchy aggregates, and their accuracy once actuals arrive."""
# Dagster resolves the context and resource types from real annotations: none are postponed here.

import datetime as dt

import dagster as dg
import pandas as pd
from mlflow.tracking import MlflowClient

from m5_assets import reader, tables
from m5_assets.defs.check_log import recorded
from m5_assets.defs.beta import known_beta_apis
from m5_assets.defs.resources import M5Data
from m5_assets.features.catalog import HORIZON
from m5_assets.forecast import store
from m5_assets.forecast.accuracy import HISTORY_COLUMNS, actuals_complete, score_forecast, warnings_against_history
from m5_assets.forecast.intervals import COVERAGES
from m5_assets.forecast.issue import issue, read_forecast_rows
from m5_assets.model import registry

ACCURACY_CHECK = "accuracy_in_line_with_history"
# One run per 30 partitions: a backfill reads the feature store once per run instead of once per
# day, and a failure costs at most 30 partitions' work to retry.
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=30)


def run_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The forecast dates of this run: one, or a backfill's range."""
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + dt.timedelta(days=k) for k in range((end - first).days)]


def _issue_range(context: dg.AssetExecutionContext, m5_data: M5Data, days: list[dt.date]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Issue and publish every day's forecast: a summary row per day, and the last day's bottom rows."""
    uri = registry.tracking_uri(m5_data.paths.mlflow)
    promoted = registry.promoted_versions(MlflowClient(tracking_uri=uri))
    chosen = {day: registry.newest_promoted(promoted, day) for day in days}
    missing = [day for day, version in chosen.items() if version is None]
    if missing:
        raise dg.Failure(
            f"no promoted model has a cutoff on or before {missing[0]}: materialize demand_model for "
            f"{missing[0]:%Y-%m}-01 or an earlier month first (promoted cutoffs: {[str(v.cutoff) for v in promoted] or 'none'})"
        )  # fmt: skip
    features, root = m5_data.table(tables.FEATURES), m5_data.paths.warehouse
    summary = []
    for version in sorted({v for v in chosen.values()}, key=lambda v: v.cutoff):
        model = registry.load_issuing_model(uri, version)
        its_days = [d for d in days if chosen[d] == version]
        rows = read_forecast_rows(features, its_days[0], its_days[-1], model)
        predictions = model.booster.predict(rows.matrix)
        for day in its_days:
            forecast = issue(features, day, model, rows, predictions)
            # The bottom file is what marks a partition as published, so it is written last.
            store.write_partition(root, tables.FORECAST_LEVELS, day, forecast.levels)
            store.write_partition(root, tables.FORECASTS, day, forecast.bottom)
            total = forecast.levels[forecast.levels["level"] == 1]
            summary.append(
                {
                    "forecast_date": day.isoformat(),
                    "series": forecast.bottom["id"].nunique(),
                    "rows": len(forecast.bottom),
                    "total_units_28d": round(float(total["forecast"].sum()), 1),
                    "model_version": model.version,
                    "model_cutoff": model.cutoff.isoformat(),
                }
            )
            context.log.info(f"forecast {day}: {len(forecast.bottom):,} rows from model version {model.version}")
            last = forecast.bottom
    return pd.DataFrame(summary), last


def build_forecast_assets(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    with known_beta_apis():
        return _forecast_assets(daily)


def _forecast_assets(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name=tables.FORECASTS.name,
        group_name="forecasts",
        kinds={"lightgbm", "parquet"},
        partitions_def=daily,
        backfill_policy=BACKFILL_POLICY,
        deps=[
            tables.FEATURES.name,
            # The month's model partition, whose cutoff is on or before the forecast date.
            dg.AssetDep("demand_model", partition_mapping=dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)),
        ],
        description=(
            f"Forecasts for the {HORIZON} days from the partition's date D, issued with sales before D "
            "only, by the newest promoted model whose cutoff is not after D. Point forecast and "
            f"{'/'.join(map(str, COVERAGES))} % intervals (conformal residuals of the model's "
            "validation window) per series and day, plus bottom-up sums to the 11 upper M5 levels "
            "in forecast_levels. Each partition is a hive folder forecast_date=D, published atomically."
        ),
    )  # fmt: skip
    def forecasts(context: dg.AssetExecutionContext, m5_data: M5Data) -> dg.MaterializeResult:
        days = run_days(context)
        summary, last = _issue_range(context, m5_data, days)
        root = m5_data.paths.warehouse
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": int(summary["rows"].sum()),
                "partitions": len(days),
                "forecast_dates": f"{days[0]} .. {days[-1]}",
                "series": int(summary["series"].max()),
                "model_versions": ", ".join(sorted(summary["model_version"].unique())),
                "per_partition": dg.MetadataValue.md(summary.tail(31).to_markdown(index=False)),
                "preview": dg.MetadataValue.md(last.head(8).round(3).to_markdown(index=False)),
                "path": dg.MetadataValue.path(str(tables.FORECASTS.folder(root))),
            }
        )

    @dg.asset(
        name=tables.FORECAST_ACCURACY.name,
        group_name="forecasts",
        kinds={"pandas", "parquet"},
        partitions_def=daily,
        backfill_policy=BACKFILL_POLICY,
        deps=[tables.FORECASTS.name, tables.SALES_LONG.name, tables.RAW_CALENDAR.name, tables.RAW_SELL_PRICES.name],
        check_specs=[
            dg.AssetCheckSpec(
                ACCURACY_CHECK, asset="forecast_accuracy",
                description="warns when WRMSSE rises more than 10 % above its trailing 28-partition "
                "mean, or 95 % interval coverage is more than 5 points from 95",
            )
        ],
        description=(
            f"The forecast issued on D scored once all its {HORIZON} days have actuals: WRMSSE overall "
            "and per level, RMSE, MAE, bias and interval coverage, next to seasonal naive issued on D."
        ),
    )  # fmt: skip
    def forecast_accuracy(context: dg.AssetExecutionContext, m5_data: M5Data):
        days = run_days(context)
        inputs = m5_data.feature_inputs()
        waiting = [d for d in days if not actuals_complete(inputs, d)]
        if waiting:
            last = inputs.dates[inputs.n_sales_days - 1].date()
            raise dg.Failure(
                f"actuals end on {last}: forecasts issued from {waiting[0]} on cannot be scored until "
                f"{waiting[0] + dt.timedelta(days=HORIZON - 1)} has sales"
            )  # fmt: skip
        root = m5_data.paths.warehouse
        # Read once: each day is judged against the scores before it, this run's included.
        history = reader.read_accuracy(root)[list(HISTORY_COLUMNS)]
        rows, problems = [], {}
        for day in days:
            row = score_forecast(inputs, day, reader.read_partition(root, tables.FORECASTS, day))
            found = warnings_against_history(row, history[history["forecast_date"] < day])
            if found:
                problems[day.isoformat()] = "; ".join(found)
            store.write_partition(root, tables.FORECAST_ACCURACY, day, pd.DataFrame([row]))
            kept, fresh = history[history["forecast_date"] != day], pd.DataFrame([row])[list(HISTORY_COLUMNS)]
            # Concatenating an empty frame is deprecated in pandas: start from the new row instead.
            history = fresh if kept.empty else pd.concat([kept, fresh], ignore_index=True)
            rows.append(row)
        scores = pd.DataFrame(rows)
        shown = ["forecast_date", "wrmsse", "seasonal_naive_wrmsse", "mae", "bias", *[f"coverage_{c}" for c in COVERAGES]]
        yield dg.MaterializeResult(
            metadata={
                "partitions": len(days),
                "mean_wrmsse": round(float(scores["wrmsse"].mean()), 4),
                "mean_seasonal_naive_wrmsse": round(float(scores["seasonal_naive_wrmsse"].mean()), 4),
                **{f"mean_coverage_{c}": round(float(scores[f"coverage_{c}"].mean()), 1) for c in COVERAGES},
                "scores": dg.MetadataValue.md(scores[shown].tail(31).round(4).to_markdown(index=False)),
                "path": dg.MetadataValue.path(str(tables.FORECAST_ACCURACY.folder(root))),
            }
        )
        yield recorded(m5_data, context, tables.FORECAST_ACCURACY.name, ACCURACY_CHECK, dg.AssetCheckResult(
            check_name=ACCURACY_CHECK,
            passed=not problems,
            severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(f"{d}: {p}" for d, p in problems.items()) or f"every scored partition in line ({days[0]} .. {days[-1]})",
            metadata={"partitions_with_warnings": len(problems)},
        ))  # fmt: skip

    return [forecasts, forecast_accuracy]
