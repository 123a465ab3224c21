"""Which of ``m5 run``'s runs are already done, so a second ``m5 run`` does only what is stale.

``m5 run`` launches its runs in order (the feature store, each monthly model, the newest forecast,
the backtest's forecasts, their scoring), each reading what the runs before it wrote. Each run is
tagged with a key: the code version (a digest of this package's source), the raw folder as the
raw-file sensor sees it (``automation.snapshot``: each file's size and modification time), the
settings and the ids of the runs before it in the same ``m5 run``. A run whose key matches a successful run in the instance's records, and whose
outputs are still on disk, has nothing to do: it is skipped, and its recorded run id goes into the
keys of the runs after it. So a changed file or a changed line of code makes the first run it
touches stale, and with it everything after; an ``m5 run`` that failed at minute 12 starts again
at the run that failed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import dagster as dg

KEY_TAG = "m5/up_to_date_key"
CODE_VERSION_TAG = "m5/code_version"
PACKAGE = Path(__file__).resolve().parents[1]


@cache
def code_version() -> str:
    """A digest of every Python file of the package: any change to the code changes it."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class Chain:
    """The runs of one ``m5 run`` so far: each run's key covers the code, the raw files and every
    run before it."""

    instance: dg.DagsterInstance
    inputs: str  # the raw folder's snapshot, the known genuine days and the settings
    runs: list[str] = field(default_factory=list)

    def key(self, job: str, what: str) -> str:
        text = "\n".join([code_version(), self.inputs, job, what, *self.runs])
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def tags(self, job: str, what: str) -> dict[str, str]:
        return {KEY_TAG: self.key(job, what), CODE_VERSION_TAG: code_version()}

    def done(self, job: str, what: str, outputs: Sequence[Path] = ()) -> dg.DagsterRun | None:
        """The successful run that already did ``job`` for ``what`` with this chain's inputs, if its
        ``outputs`` are all still there."""
        found = self.instance.get_runs(
            filters=dg.RunsFilter(
                job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS], tags={KEY_TAG: self.key(job, what)}
            ),
            limit=1,
        )
        return found[0] if found and all(p.exists() for p in outputs) else None

    def add(self, run_id: str) -> None:
        self.runs.append(run_id)


def skipped_line(job: str, what: str, run: dg.DagsterRun, instance: dg.DagsterInstance) -> str:
    record = instance.get_run_record_by_id(run.run_id)
    when = ""
    if record is not None and record.end_time is not None:
        when = f" of {dt.datetime.fromtimestamp(record.end_time):%Y-%m-%d %H:%M}"
    return (
        f"{f'{job} {what}'.strip()}: up to date, skipped (run {run.run_id[:8]}{when} did it with the same raw "
        "files, code and inputs)"
    )
