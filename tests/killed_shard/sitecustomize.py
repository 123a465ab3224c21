"""Loaded by every Python process of a test run whose PYTHONPATH holds this folder: the first
process that writes a staged file of store group 1 dies (SIGKILL's exit code, no cleanup) with the
file half written, before its Parquet footer. $M5_KILL_MARKER records that it happened, so the
retry writes normally. (A staged file's name starts with its group's folder: atomic_target.)"""

import os

import pyarrow.parquet as pq

_close = pq.ParquetWriter.close


def _close_or_die(writer):
    marker = os.environ.get("M5_KILL_MARKER", "")
    if marker and os.path.basename(str(writer.where)).startswith("group_1.") and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(writer.where))
        os._exit(9)
    _close(writer)


pq.ParquetWriter.close = _close_or_die
