"""Run the feature-store job and stop, never to return, while the feature rows are half written.

Used by test_fault.py, which starts this as a subprocess and kills it with SIGKILL: the Parquet
writer has written its row groups but not yet its footer, so the staged file is truly partial.
"""

import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from forecasting import run_pipeline

data_dir, ready = Path(sys.argv[1]), Path(sys.argv[2])
close = pq.ParquetWriter.close


def close_or_hang(writer):
    # A store's file of the feature store's new generation (generation=<g>.<store>.parquet.<id>.partial):
    # the feature store's only writer, whatever the group count.
    if Path(str(writer.where)).name.startswith("generation="):
        ready.write_text(str(writer.where))
        time.sleep(600)
    close(writer)


pq.ParquetWriter.close = close_or_hang
run_pipeline(data_dir)
