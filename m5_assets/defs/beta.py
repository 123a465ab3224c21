"""Dagster APIs marked beta or superseded that this project uses on purpose, so their warnings are known.

Each use is listed: a backfill policy and a partition mapping that tolerates months without a
model on ``forecasts`` (beta); the partition freshness check on ``forecasts`` and its sensor
(superseded by asset-level freshness policies, which cannot say which partition is due). Other
warnings still show.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

KNOWN = (
    r"Parameter `backfill_policy` of function `asset`",
    r"Parameter `allow_nonexistent_upstream_partitions` of initializer `TimeWindowPartitionMapping",
)
KNOWN_SUPERSEDED = (
    r"Function `build_time_partition_freshness_checks` is superseded",
    r"Function `build_sensor_for_freshness_checks` is superseded",
)


@contextmanager
def known_beta_apis() -> Iterator[None]:
    with warnings.catch_warnings():
        for message in KNOWN:
            warnings.filterwarnings("ignore", message=message, category=dg.BetaWarning)
        for message in KNOWN_SUPERSEDED:
            warnings.filterwarnings("ignore", message=message, category=dg.SupersessionWarning)
        yield
