"""Gunicorn settings for ``python -m m5_serving --workers N`` (loaded as ``python:m5_serving.gunicorn_conf``)."""

from prometheus_client import multiprocess


def child_exit(server, worker) -> None:
    # A dead worker's live gauges must not linger in the combined /metrics.
    multiprocess.mark_process_dead(worker.pid)
