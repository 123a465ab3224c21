"""Dagster APIs still marked beta that this project uses on purpose, so their warnings are known.

Each use is listed: a backfill policy and a partition mapping that tolerates months without a
model on ``forecasts``. Other beta warnings still show.
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


@contextmanager
def known_beta_apis() -> Iterator[None]:
    with warnings.catch_warnings():
        for message in KNOWN:
            warnings.filterwarnings("ignore", message=message, category=dg.BetaWarning)
        yield
