"""Gunicorn settings for ``python -m m5_serving --workers N`` (loaded as ``python:m5_serving.gunicorn_conf``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import multiprocess

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker


def child_exit(server: Arbiter, worker: Worker) -> None:
    # A dead worker's live gauges must not linger in the combined /metrics.
    multiprocess.mark_process_dead(worker.pid)
