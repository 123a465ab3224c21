"""Runs that ``m5 run`` and ``m5 backtest`` start as the UI's launchpad would.

A run made by ``execute_in_process`` carries no code-location origin and the snapshot of an
ephemeral copy of its job: the UI lists it under no job, leaves it off the timeline, and warns on
re-execution that the job "may be a different version". These runs are created with the origin of
the code location that ``workspace.yaml`` declares (its location name, the ``__repository__`` of a
``Definitions`` module) and the snapshot of the job as loaded there, so the UI finds them where it
finds the runs it launched itself. They are executed here, in this process: the instance queues
launched runs, and ``m5 run`` starts no daemon to dequeue them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
from dagster._core.execution.api import execute_run
from dagster._core.origin import JobPythonOrigin
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.workspace.load import location_origin_from_module_name

# As workspace.yaml and deploy/workspace.yaml declare it (a test holds them to it).
LOCATION_NAME = "m5_assets"
DEFINITIONS_MODULE = "m5_assets.definitions"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class CodeLocationRuns:
    """Executes the jobs of ``defs`` as runs of the ``m5_assets`` code location."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs = defs
        self.instance = instance
        working_directory = os.fspath(PROJECT_ROOT)
        location = location_origin_from_module_name(
            DEFINITIONS_MODULE, None, working_directory, LOCATION_NAME, sys.executable
        )
        self._repository = RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME)
        self._code = ReconstructableRepository.for_module(
            DEFINITIONS_MODULE, "defs", working_directory
        ).get_python_origin()

    def execute(
        self, job_name: str, run_config: Mapping[str, object], tags: Mapping[str, str]
    ) -> dg.JobExecutionResult:
        """``job_name`` run to its end; its events are the run's event log, as the UI shows it."""
        job = self.defs.resolve_job_def(job_name)
        run = self.instance.create_run_for_job(
            job,
            run_config=run_config,
            tags={**job.tags, **tags},
            remote_job_origin=RemoteJobOrigin(self._repository, job_name),
            job_code_origin=JobPythonOrigin(job_name, self._code),
        )
        return execute_run(InMemoryJob(job), run, self.instance, raise_on_error=False)

    def execute_partition(
        self, job_name: str, partition_key: str, run_config: Mapping[str, object], tags: Mapping[str, str]
    ) -> dg.JobExecutionResult:
        """One partition of ``job_name``, tagged as the launchpad tags it."""
        return self.execute(job_name, run_config, {**tags, "dagster/partition": partition_key})
