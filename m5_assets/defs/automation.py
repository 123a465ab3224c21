"""Schedules and sensors: daily forecasts and scoring, monthly retraining, reactions to new data.

All are defined stopped; switch each on in the UI (Automation) or with
``dagster schedule start <name>`` / ``dagster sensor start <name>`` while the daemon runs
(``make ui`` starts it).
"""
# Dagster resolves the context types from real annotations: none are postponed here.

import datetime as dt
import hashlib
import json
import time
from pathlib import Path

import dagster as dg

from m5_assets import raw_files, reader, tables
from m5_assets.defs import run_outcomes
from m5_assets.defs.beta import known_beta_apis
from m5_assets.defs.jobs import FEATURE_STORE_JOB, TRAIN_MODEL_JOB
from m5_assets.defs.mlflow import MlflowTracking
from m5_assets.defs.resources import M5Data
from m5_assets.defs.results import ScheduleTick, TickResult
from m5_assets.model import registry
from m5_assets.settings import load_settings

ISSUE_FORECAST_JOB = "issue_forecast"
SCORE_FORECAST_JOB = "score_forecast"
# A raw file untouched this long is taken as settled without waiting for a second tick.
SETTLE_SECONDS = 60


def file_state(path: Path) -> list[int]:
    """Size and modification time (ns) of a file: what tells a changed file from the same one."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def snapshot(raw: Path) -> dict[str, list[int]]:
    """The state of each file in the raw folder, hidden files aside."""
    return {p.name: file_state(p) for p in raw_files.visible_entries(raw) if p.is_file()}


def _cursor(handled: dict, last_tick: dict) -> str:
    return json.dumps({"handled": handled, "last_tick": last_tick}, sort_keys=True)


def _read_cursor(cursor: str | None) -> tuple[dict, dict]:
    """(the folder as last handled, the folder as seen at the last tick); an older cursor was the
    handled folder alone."""
    state = json.loads(cursor) if cursor else {}
    if set(state) != {"handled", "last_tick"}:
        return state, state
    return state["handled"], state["last_tick"]


def forecast_jobs() -> list:
    return [
        dg.define_asset_job(
            ISSUE_FORECAST_JOB,
            # The freshness check is the sensor's to evaluate: a run that issues past dates (a
            # backfill, m5 run's backtest) would otherwise report today's partition overdue.
            selection=dg.AssetSelection.assets(
                tables.FORECASTS.name,
                tables.FORECAST_LEVELS.name,
                tables.FEATURE_DRIFT.name,
                tables.INVENTORY_PLAN.name,
            )
            - dg.AssetSelection.checks(*forecast_freshness_checks()),
            description="Issue (or re-issue) the 28-day forecast of one or more forecast dates, with its feature drift and inventory plan.",
            hooks=run_outcomes.RECORDED,
        ),
        dg.define_asset_job(
            SCORE_FORECAST_JOB,
            selection=dg.AssetSelection.assets(tables.FORECAST_ACCURACY.name),
            description="Score forecasts whose 28 days all have actuals.",
            hooks=run_outcomes.RECORDED,
        ),
    ]


def _in_partitions(daily: dg.DailyPartitionsDefinition, day: dt.date) -> bool:
    return daily.has_partition_key(day.isoformat())


def _stale(day: dt.date) -> dg.SkipReason:
    # Current data's partitions open with the clock (sales through today wait for tomorrow);
    # a fixed range grows only when the code location reloads.
    return dg.SkipReason(
        f"the data now reaches {day - dt.timedelta(days=1)}, but partition {day} is not open: it opens on {day} (UTC) "
        "if the data was current when the code loaded; otherwise reload the code location to add it"
    )


def build_automation(daily: dg.DailyPartitionsDefinition, monthly: dg.MonthlyPartitionsDefinition) -> tuple[list, list]:
    """(schedules, sensors) bound to the partitions of the loaded data."""
    timezone = load_settings().schedule_timezone

    @dg.schedule(
        job_name=ISSUE_FORECAST_JOB,
        cron_schedule="0 6 * * *",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Every morning: the forecast issued on the day after the last sales day.",
    )
    def daily_forecast(context: dg.ScheduleEvaluationContext, m5_data: M5Data) -> ScheduleTick:
        day = reader.newest_forecast_date(m5_data.paths)
        if not _in_partitions(daily, day):
            return _stale(day)
        if day in reader.partition_days(m5_data.paths.warehouse, tables.FORECASTS):
            return dg.SkipReason(f"the forecast for {day} is already issued")
        return dg.RunRequest(run_key=f"forecast-{day}", partition_key=day.isoformat())

    @dg.schedule(
        job_name=SCORE_FORECAST_JOB,
        cron_schedule="30 6 * * *",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Every morning: score each issued forecast whose 28 days now all have actuals.",
    )
    def daily_scoring(context: dg.ScheduleEvaluationContext, m5_data: M5Data) -> ScheduleTick:
        last_sales = reader.newest_forecast_date(m5_data.paths) - dt.timedelta(days=1)
        root = m5_data.paths.warehouse
        scored = set(reader.partition_days(root, tables.FORECAST_ACCURACY))
        due = [
            d
            for d in reader.partition_days(root, tables.FORECASTS)
            if reader.scorable(d, last_sales) and d not in scored and _in_partitions(daily, d)
        ]
        if not due:
            return dg.SkipReason("no issued forecast has newly complete actuals")
        return [dg.RunRequest(run_key=f"score-{d}", partition_key=d.isoformat()) for d in due]

    @dg.schedule(
        job_name=TRAIN_MODEL_JOB,
        cron_schedule="0 3 1 * *",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="On the first of each month: the model with the newest cutoff the data allows.",
    )
    def monthly_retrain(context: dg.ScheduleEvaluationContext, m5_data: M5Data) -> ScheduleTick:
        newest = monthly.get_last_partition_key()
        return dg.RunRequest(run_key=f"train-{newest}", partition_key=newest)

    @dg.sensor(
        job_name=FEATURE_STORE_JOB,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="New or changed files in the raw folder rebuild raw tables to features, once every file has settled "
        f"(unchanged since the last tick, or for {SETTLE_SECONDS} s) and looks whole (the features_refreshed sensor then re-issues the newest forecast).",
    )
    def raw_files_changed(context: dg.SensorEvaluationContext, m5_data: M5Data) -> TickResult:
        raw = m5_data.paths.raw
        now = snapshot(raw)
        handled, last_tick = _read_cursor(context.cursor)
        if now == handled:
            return dg.SkipReason("no raw file changed")
        # A file being copied in keeps changing: wait until it holds still.
        moving = sorted(
            name
            for name, seen in now.items()
            if seen != last_tick.get(name) and time.time_ns() - seen[1] < SETTLE_SECONDS * 10**9
        )
        if moving:
            context.update_cursor(_cursor(handled, now))
            return dg.SkipReason(
                f"waiting for {', '.join(moving)} to settle: changed since the last tick, less than {SETTLE_SECONDS} s ago"
            )
        try:
            found = raw_files.check_raw_folder(raw)
        except FileNotFoundError as error:
            context.update_cursor(_cursor(now, now))  # said once; a change to the folder is looked at again
            return dg.SkipReason(str(error))
        if isinstance(found, raw_files.RawFiles):
            cut = [
                reason for path in (found.calendar, found.prices, found.sales) if (reason := raw_files.cut_off(path))
            ]
            if cut:
                context.update_cursor(_cursor(handled, now))
                return dg.SkipReason(
                    f"{'; '.join(cut)}: waiting for the copy to finish (a file that stays so is truncated, and a run would name its last line)"
                )
        context.update_cursor(_cursor(now, now))
        return dg.RunRequest(run_key=f"raw-{hashlib.sha256(json.dumps(now, sort_keys=True).encode()).hexdigest()[:16]}")

    @dg.asset_sensor(
        asset_key=dg.AssetKey(tables.FEATURES.name),
        job_name=ISSUE_FORECAST_JOB,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="A new feature store re-issues the newest forecast.",
    )
    def features_refreshed(
        context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry, m5_data: M5Data
    ) -> TickResult:
        day = reader.newest_forecast_date(m5_data.paths)
        if not _in_partitions(daily, day):
            return _stale(day)
        return dg.RunRequest(
            run_key=f"features-{asset_event.run_id}-{asset_event.timestamp}-{day}", partition_key=day.isoformat()
        )

    @dg.sensor(
        job_name=ISSUE_FORECAST_JOB,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="A new champion in the registry re-issues the newest forecast with it.",
    )
    def champion_changed(
        context: dg.SensorEvaluationContext, m5_data: M5Data, mlflow_tracking: MlflowTracking
    ) -> TickResult:
        champion = registry.current_champion(mlflow_tracking.client())
        if champion is None or champion.version == context.cursor:
            return dg.SkipReason("the champion has not changed")
        context.update_cursor(champion.version)
        day = reader.newest_forecast_date(m5_data.paths)
        if not _in_partitions(daily, day):
            return _stale(day)
        return dg.RunRequest(run_key=f"champion-{champion.version}-{day}", partition_key=day.isoformat())

    return [daily_forecast, daily_scoring, monthly_retrain], [
        raw_files_changed,
        features_refreshed,
        champion_changed,
        forecast_freshness_sensor(),
    ]


def forecast_freshness_checks() -> list[dg.AssetChecksDefinition]:
    """The day's forecast partition is materialized by M5_FORECAST_DUE_BY in the schedule's time zone.

    A partition check, not an asset-level FreshnessPolicy: that one reads any materialization as
    fresh, so backfilling last month's partitions would hide a missing forecast for today.
    """
    settings = load_settings()
    due = settings.forecast_due_by
    with known_beta_apis():
        return list(
            dg.build_time_partition_freshness_checks(
                assets=[dg.AssetKey(tables.FORECASTS.name)],
                deadline_cron=f"{due.minute} {due.hour} * * *",
                timezone=settings.schedule_timezone,
            )
        )


def forecast_freshness_sensor() -> dg.SensorDefinition:
    """Evaluates the freshness check as time passes: no run materializes what is missing."""
    with known_beta_apis():
        return dg.build_sensor_for_freshness_checks(
            freshness_checks=forecast_freshness_checks(),
            name="forecast_freshness",
            default_status=dg.DefaultSensorStatus.STOPPED,
        )
