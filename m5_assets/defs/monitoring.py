"""Monitoring beside the daily forecasts: the drift of each forecast's input rows from the serving
model's validation window (see ``m5_assets.monitoring.drift`` for why that window, the no-change
PSI and the importance weights)."""
# Dagster resolves the context, config and resource types from real annotations: none are postponed here.

import datetime as dt

import dagster as dg

from m5_assets import tables
from m5_assets.defs.beta import known_beta_apis
from m5_assets.defs.check_log import recorded
from m5_assets.defs.forecasts import BACKFILL_POLICY, run_days
from m5_assets.defs.metadata import partition_metadata
from m5_assets.defs.mlflow import MlflowTracking
from m5_assets.defs.resources import M5Data
from m5_assets.defs.results import AssetEvents
from m5_assets.features.catalog import HORIZON
from m5_assets.forecast.drift import DayDrift, drift_days
from m5_assets.monitoring.drift import CALENDAR_STATUS, DRIFT_FAMILIES, Thresholds

FEATURES_STABLE = "features_stable"
_DEFAULT = Thresholds()


class DriftConfig(dg.Config):
    """Thresholds on a feature's score: its PSI beyond the no-change PSI, weighted by importance."""

    warn_psi: float = _DEFAULT.warn_psi
    fail_psi: float = _DEFAULT.fail_psi


def build_monitoring_assets(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    with known_beta_apis():
        return [_feature_drift(daily)]


def _feature_drift(daily: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=tables.FEATURE_DRIFT.name,
        group_name="monitoring",
        kinds={"duckdb", "numpy", "parquet"},
        partitions_def=daily,
        backfill_policy=BACKFILL_POLICY,
        deps=[
            tables.FEATURES.name,
            dg.AssetDep(
                "demand_model",
                partition_mapping=dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True),
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                FEATURES_STABLE,
                asset=tables.FEATURE_DRIFT.name,
                description="warns when a feature's score (PSI beyond its no-change PSI, weighted by importance) passes "
                "warn_psi (0.1), fails past fail_psi (0.25); names the features",
            )
        ],
        description=(
            f"Per feature ({', '.join(DRIFT_FAMILIES)}), the population stability index and the "
            f"Kolmogorov-Smirnov statistic between the rows the forecast issued on D reads (dated D .. D+{HORIZON - 1}, "
            f"built from sales before D) and the validation window of the model that serves D (the {HORIZON} days "
            "before its cutoff; the newest promoted model with a cutoff not after D). Each PSI is judged beyond "
            "the PSI the same comparison shows with no change (items swapped between the windows at random), "
            "pooled and within each department, and weighted by the feature's importance in that model. Event "
            "features are shown but not judged."
        ),
    )
    def feature_drift_asset(
        context: dg.AssetExecutionContext, config: DriftConfig, m5_data: M5Data, mlflow_tracking: MlflowTracking
    ) -> AssetEvents:
        days, thresholds = run_days(context), Thresholds(config.warn_psi, config.fail_psi)
        con, features, client = m5_data.connect(), m5_data.files(tables.FEATURES), mlflow_tracking.client()
        try:
            drifts = drift_days(con, features, client, days, thresholds, m5_data.storage)
        except LookupError as error:
            raise dg.Failure(str(error)) from error
        for drift in drifts:
            context.add_asset_metadata(drift_metadata(drift), partition_key=drift.day.isoformat())
        yield dg.MaterializeResult()
        check = stable_result(drifts, thresholds, days)
        yield recorded(m5_data, context, tables.FEATURE_DRIFT.name, FEATURES_STABLE, check)

    return feature_drift_asset


def drift_metadata(drift: DayDrift) -> dict:
    """What the UI shows of one day's drift."""
    table = drift.table
    judged = table[table["status"] != CALENDAR_STATUS]
    start, end = drift.reference
    return partition_metadata(drift.path, table, tables.FEATURE_DRIFT.describe, preview_rows=10) | {
        "max_psi": round(float(judged["psi"].max()), 4),
        "max_score": round(float(judged["score"].max()), 4),
        "features_warned": int((table["status"] == "warn").sum()),
        "features_drifted": int((table["status"] == "drift").sum()),
        "model_version": drift.model_version,
        "reference_window": f"{start} .. {end - dt.timedelta(days=1)}",
    }


def stable_result(drifts: list[DayDrift], thresholds: Thresholds, days: list[dt.date]) -> dg.AssetCheckResult:
    flagged = {d.day: d.flagged for d in drifts if len(d.flagged)}
    worst = max((float(m["score"].max()) for m in flagged.values()), default=0.0)
    return dg.AssetCheckResult(
        check_name=FEATURES_STABLE,
        passed=not flagged,
        severity=dg.AssetCheckSeverity.ERROR if worst > thresholds.fail_psi else dg.AssetCheckSeverity.WARN,
        description="; ".join(
            f"{day}: "
            + ", ".join(
                f"{r.feature} in {r.segment} score {r.score:.3f} ({r.status}: PSI {r.psi:.3f}, no-change {r.no_change_psi:.3f}, importance {r.importance:.2f})"
                for r in moved.itertuples()
            )
            for day, moved in flagged.items()
        )[:4000]
        or f"no feature's score above {thresholds.warn_psi:g} ({days[0]} .. {days[-1]})",
        metadata={"partitions_flagged": len(flagged), "max_score": round(worst, 4)},
    )
