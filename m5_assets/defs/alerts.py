"""Alerts: one JSON message per failed run and per failed or warning check, posted to a webhook.

Off by default twice over: both sensors are defined stopped, and they post only when
``$M5_ALERT_WEBHOOK_URL`` is set. A post that fails raises, so the tick shows the error and the
cursor stays before the event, which is posted again on the next tick.
"""
# Dagster resolves the context and resource types from real annotations: none are postponed here.

import datetime as dt
import json
import time
import urllib.request

import dagster as dg

from m5_assets.settings import Settings, load_settings

ALERT_URL_ENV = Settings.variable("alert_webhook_url")
PAGE = 50  # finished runs read per tick
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


class AlertWebhook(dg.ConfigurableResource):
    """Where alerts go, and where the Dagster UI that the messages link to is."""

    url: str = ""
    ui_url: str = "http://127.0.0.1:3000"  # `make ui`'s address
    timeout_seconds: float = 10.0

    def run_link(self, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/runs/{run_id}"

    def post(self, message: dict) -> None:
        request = urllib.request.Request(
            self.url, data=json.dumps(message).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            response.read()


def alert_webhook() -> AlertWebhook:
    """The webhook the settings name. A webhook URL usually carries its token, so the resource
    takes it from the variable: the UI shows the variable's name, never the URL."""
    settings = load_settings()
    url = dg.EnvVar(ALERT_URL_ENV) if settings.alert_webhook_url else ""
    return AlertWebhook(url=url, ui_url=settings.dagster_ui_url)


def _partition(run: dg.DagsterRun | None) -> str | None:
    if run is None:
        return None
    tags = run.tags
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    return f"{start}..{end}" if start else None


def build_alert_sensors() -> list[dg.SensorDefinition]:
    @dg.sensor(
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Posts one JSON message per failed or warning asset check to ${ALERT_URL_ENV} (off while unset). "
        "Its first tick starts the count: runs that finished before it are not reported.",
    )
    def check_alerts(context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook) -> dg.SkipReason:
        if not alert_webhook.url:
            return dg.SkipReason(f"no webhook: set {ALERT_URL_ENV} to post alerts")
        # Read run by run: a run-sharded event log (the SQLite default) takes no global cursor.
        if context.cursor is None:
            context.update_cursor(json.dumps({"after": time.time(), "runs": []}))
            return dg.SkipReason("started: alerts on runs that finish from now on")
        cursor = json.loads(context.cursor)
        finished = context.instance.get_run_records(
            filters=dg.RunsFilter(statuses=FINISHED, updated_after=dt.datetime.fromtimestamp(cursor["after"], dt.UTC)),
            order_by="update_timestamp",
            ascending=True,
            limit=PAGE,
        )
        posted = 0
        for record in finished:
            run = record.dagster_run
            if run.run_id in cursor["runs"]:
                continue
            for entry in context.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
                evaluation = entry.asset_check_evaluation
                if evaluation is not None and not evaluation.passed:
                    alert_webhook.post(
                        {
                            "event": "check_failed"
                            if evaluation.severity == dg.AssetCheckSeverity.ERROR
                            else "check_warning",
                            "asset": evaluation.asset_key.to_user_string(),
                            "check": evaluation.check_name,
                            "severity": evaluation.severity.value,
                            "partition": evaluation.partition or _partition(run),
                            "description": evaluation.description or "",
                            "run_id": run.run_id,
                            "run_url": alert_webhook.run_link(run.run_id),
                        }
                    )
                    posted += 1
            after = record.update_timestamp.timestamp()
            cursor = {
                "after": after,
                "runs": [*cursor["runs"], run.run_id] if after == cursor["after"] else [run.run_id],
            }
            context.update_cursor(json.dumps(cursor))
        return dg.SkipReason(f"{posted} alert(s) posted for {len(finished)} finished run(s)")

    @dg.run_failure_sensor(
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Posts one JSON message per failed run to ${ALERT_URL_ENV} (off while unset).",
    )
    def run_failure_alerts(context: dg.RunFailureSensorContext, alert_webhook: AlertWebhook) -> dg.SkipReason | None:
        if not alert_webhook.url:
            return dg.SkipReason(f"no webhook: set {ALERT_URL_ENV} to post alerts")
        run = context.dagster_run
        alert_webhook.post(
            {
                "event": "run_failed",
                "job": run.job_name,
                "partition": _partition(run),
                "assets": sorted(k.to_user_string() for k in (run.asset_selection or [])),
                "description": context.failure_event.message or "",
                "run_id": run.run_id,
                "run_url": alert_webhook.run_link(run.run_id),
            }
        )
        return None

    return [check_alerts, run_failure_alerts]
