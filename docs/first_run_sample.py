"""The README's sample of what ``make run`` prints, taken from a real run.

``python docs/first_run_sample.py`` runs ``make run`` on a fresh temporary data folder (the demo
data set, generated there), keeps its whole output as ``docs/snippets/first-run.txt`` (the getting
started page includes it) and rewrites the README's sample, between its ``first-run`` markers, as
that output abridged by ``abridge``. A test holds the README to the abridgement of the kept output,
so the sample changes only by running this again.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = ROOT / "docs" / "snippets" / "first-run.txt"
README = ROOT / "README.md"
START, END = "<!-- first-run:start", "<!-- first-run:end -->"
# The rows of a model's table the README keeps: what it issues, the model alone, the two baselines.
KEPT_METHODS = ("issued", "lightgbm", "mean_28", "seasonal_naive")
NOISE = re.compile(r"^run [0-9a-f-]{36} succeeded in .*$")


def _blocks(text: str) -> list[list[str]]:
    kept = [line for line in text.splitlines() if not NOISE.match(line)]
    return [block.splitlines() for block in re.split(r"\n\s*\n", "\n".join(kept).strip()) if block.strip()]


def abridge(full: str) -> str:
    """The output with every model but the newest, and the backtest's runs, cut to their first line."""
    blocks = _blocks(full)
    starts = [i for i, b in enumerate(blocks) if b[0].startswith("training model partition")]
    out: list[list[str]] = []
    skipping = False
    for i, block in enumerate(blocks):
        head = block[0]
        if starts and i == starts[0] and len(starts) > 1:
            out.append([head, "..."])
            skipping = True
            continue
        if starts and i == starts[-1]:
            skipping = False
        if head.startswith(("backtest: issuing", "backtest: scoring")):
            out.append([head, "..."])
            skipping = True
            continue
        if head.startswith(("issuing the newest forecast", "backtest, ")):
            skipping = False
        if skipping:
            continue
        if head.startswith("demand_model (cutoff"):
            rows = [line for line in block if line.startswith("| ") and not line.startswith("| method")]
            dropped = [r for r in rows if r.split()[1] not in KEPT_METHODS]
            block = [line for line in block if line not in dropped]
            if dropped:
                last_kept = [r for r in rows if r not in dropped][-1]
                block.insert(block.index(last_kept) + 1, "...")
        if head.startswith("backtest, ") and len(block) > 6:
            rows = [line for line in block if line.startswith("| 2")]
            table_end = block.index(rows[-1])
            block = [*block[:3], rows[0], "...", rows[-1], *block[table_end + 1 :]]
        out.append(block)
    return "\n\n".join("\n".join(b) for b in out) + "\n"


def readme_block(readme: str) -> str:
    """The sample inside the README's markers (the fenced block's lines)."""
    region = readme.split(START, 1)[1].split(END, 1)[0]
    return region.split("```\n", 1)[1].rsplit("```", 1)[0]


def with_sample(readme: str, full: str, day: dt.date) -> str:
    before, rest = readme.split(START, 1)
    after = rest.split(END, 1)[1]
    region = (
        f"{START}: written by docs/first_run_sample.py from a real run; do not edit -->\n"
        f"What `make run` printed on {day.day} {day:%B %Y} (the demo data, abridged;\n"
        "[the whole output](docs/getting-started.md#the-demo-run)):\n\n"
        f"```\n{abridge(full)}```\n"
    )
    return before + region + END + after


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="m5-first-run-") as folder:
        data = Path(folder) / "data"
        done = subprocess.run(
            ["make", "--silent", "--no-print-directory", "run", f"M5_DATA_DIR={data}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
            return done.returncode
        full = done.stdout.replace(str(data), "data")
    SNIPPET.write_text(full)
    README.write_text(with_sample(README.read_text(), full, dt.date.today()))
    print(f"wrote {SNIPPET.relative_to(ROOT)} ({len(full.splitlines())} lines) and the README's sample")
    return 0


if __name__ == "__main__":
    sys.exit(main())
