"""Loaded by every Python process of a test run whose PYTHONPATH holds this folder: the first
process that writes a staged file of store group 1 dies (SIGKILL's exit code, no cleanup) with the
file half written, before its Parquet footer. $M5_KILL_MARKER records that it happened, so the
retry writes normally. (A staged file's name starts with its group's folder: atomic_target. The
feature store's files are written in place of a generation, one per store: $M5_KILL_NAME names a
part of the name of one of group 1's.)"""

import os

import pyarrow.parquet as pq

_close = pq.ParquetWriter.close


def _close_or_die(writer):
    marker = os.environ.get("M5_KILL_MARKER", "")
    name = os.path.basename(str(writer.where))
    named = os.environ.get("M5_KILL_NAME", "")
    ours = name.startswith("group_1.") or bool(named and named in name)
    if marker and ours and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(writer.where))
        os._exit(9)
    _close(writer)


pq.ParquetWriter.close = _close_or_die
