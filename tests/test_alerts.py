"""Alerts reach a real HTTP receiver on loopback, one JSON message per event."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest
from test_outliers import SPIKE, _set_units

from m5_assets.definitions import build_definitions
from m5_assets.defs.alerts import AlertWebhook
from m5_assets.defs.jobs import FEATURE_STORE_JOB
from m5_assets.defs.resources import M5Data


@pytest.fixture
def receiver():
    """An HTTP server on 127.0.0.1 that keeps every JSON body posted to it; stopped after the test."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _tick(defs, instance, name: str, cursor: str | None, webhook: AlertWebhook):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={**defs.resources, "alert_webhook": webhook}
    ) as context:
        result = defs.get_sensor_def(name)(context)
        return result, context.cursor


def test_one_failed_check_posts_exactly_one_well_formed_message(data_dir, receiver):
    url, received = receiver
    _set_units(data_dir / "raw", 5, "d_200", SPIKE)  # units_plausible refuses the raw sales
    defs = build_definitions(M5Data(data_dir=str(data_dir)))
    webhook = AlertWebhook(url=url, ui_url="http://dagster.test:3000")
    with dg.instance_for_test() as instance:
        _, cursor = _tick(defs, instance, "check_alerts", None, webhook)  # the first tick only starts the count
        result = defs.resolve_job_def(FEATURE_STORE_JOB).execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        _, cursor = _tick(defs, instance, "check_alerts", cursor, webhook)
        again, _ = _tick(defs, instance, "check_alerts", cursor, webhook)

    (message,) = received
    assert message["event"] == "check_failed" and message["severity"] == "ERROR"
    assert (message["asset"], message["check"]) == ("raw_sales", "units_plausible")
    assert "1000000000" in message["description"] and "line 6, column 'd_200'" in message["description"]
    assert message["run_id"] == result.run_id and message["run_url"] == f"http://dagster.test:3000/runs/{result.run_id}"
    assert "0 alert(s) posted" in again.skip_message  # nothing is posted twice


def test_without_a_url_nothing_is_posted(data_dir, receiver):
    _, received = receiver
    defs = build_definitions(M5Data(data_dir=str(data_dir)))
    with dg.instance_for_test() as instance:
        skipped, cursor = _tick(defs, instance, "check_alerts", None, AlertWebhook(url=""))
    assert "M5_ALERT_WEBHOOK_URL" in skipped.skip_message and cursor is None and received == []


def test_a_failed_run_posts_one_message_naming_the_job_and_the_error(data_dir, receiver):
    url, received = receiver
    (data_dir / "raw" / "calendar.csv").write_text("not,a,calendar\n")
    defs = build_definitions(M5Data(data_dir=str(data_dir)))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(FEATURE_STORE_JOB).execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alerts",
            dagster_event=failure,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            resources={"alert_webhook": AlertWebhook(url=url)},
        ).for_run_failure()
        defs.get_sensor_def("run_failure_alerts")(context)
    (message,) = received
    assert (
        message["event"] == "run_failed" and message["job"] == FEATURE_STORE_JOB and message["run_id"] == result.run_id
    )
    assert message["description"]


def test_the_configured_webhook_reaches_sensors_but_the_ui_sees_only_its_variable(data_dir, receiver, monkeypatch):
    url, received = receiver
    monkeypatch.setenv("M5_ALERT_WEBHOOK_URL", url)
    defs = build_definitions(M5Data(data_dir=str(data_dir)))
    resource = defs.resources["alert_webhook"]
    assert isinstance(resource.url, dg.EnvVar) and resource.url.env_var_name == "M5_ALERT_WEBHOOK_URL"  # the UI's view
    with dg.instance_for_test() as instance:
        _, cursor = _tick(defs, instance, "check_alerts", None, resource)
        assert cursor is not None  # a URL resolved from the variable: the sensor runs, it does not skip
