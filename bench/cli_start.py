"""Benchmark: how long the `segsync` command line takes to start.

Run from the repository root:

    .venv/bin/python bench/cli_start.py                  # 9 runs of each measurement
    .venv/bin/python bench/cli_start.py --runs 21
    PYTHONPATH=/tmp/cli-old .venv/bin/python bench/cli_start.py   # another checkout's code

Each measurement runs in a fresh process, --runs times, and the median is reported (with the
fastest and slowest), since a loaded machine makes single runs vary a lot:
- `segsync --help` and `segsync values --help`: wall time from starting the process to its exit,
  through the installed `segsync` script (or `python -c` calling worker.cli's main when there is
  none next to this Python);
- importing worker.cli: `python -X importtime -c "import worker.cli"`, taking the cumulative time
  of its top-level entry (`worker.cli` with all it imports, the `worker` package included), so
  the interpreter's own start-up is left out.
The aim is under 0.3 s for `segsync --help`; the figures are printed, never failing the run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HELP_AIM_SECONDS = 0.3
# The top-level entry of `import worker.cli` in -X importtime's report.
IMPORTED_NAMES = ("worker.cli",)


def segsync_command() -> list[str]:
    """How to start segsync: the script next to this Python, else its main through `python -c`."""
    script = shutil.which("segsync", path=str(Path(sys.executable).parent))
    if script is not None:
        return [script]
    return [sys.executable, "-c", "import sys; from worker.cli import main; sys.exit(main())"]


def wall_time(command: Sequence[str]) -> float:
    """Seconds from starting `command` to its exit; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {done.stderr.decode(errors='replace').strip()}")
    return elapsed


def import_time() -> float:
    """Seconds spent importing worker.cli, from -X importtime's report."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import worker.cli"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"import worker.cli failed: {done.stderr.strip()}")
    return cumulative_seconds(done.stderr, IMPORTED_NAMES)


def cumulative_seconds(report: str, names: Sequence[str]) -> float:
    """The cumulative time of the top-level entries named `names` in an -X importtime report."""
    total_us = 0
    found = set()
    for line in report.splitlines():
        # "import time: self [us] | cumulative | imported package"; nesting indents the name.
        if not line.startswith("import time:"):
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        if name.startswith("  ") or name.strip() not in names:
            continue
        total_us += int(cumulative)
        found.add(name.strip())
    if found != set(names):
        sys.exit(f"-X importtime reported no top-level {sorted(set(names) - found)}")
    return total_us / 1_000_000


def measure(runs: int, sample: Callable[[], float]) -> list[float]:
    """`runs` samples, one after another, after one unmeasured run that warms the file cache."""
    sample()
    return [sample() for _ in range(runs)]


def show(label: str, samples: list[float]) -> float:
    """Print the median (and range) of `samples`; return the median."""
    median = statistics.median(samples)
    print(
        f"{label:<28} median {median:6.3f} s   (fastest {min(samples):.3f} s, "
        f"slowest {max(samples):.3f} s, {len(samples)} runs)"
    )
    return median


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the start-up figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=9, help="runs of each measurement (odd)")
    options = parser.parse_args(argv)
    if options.runs < 1:
        parser.error("--runs must be at least 1")

    segsync = segsync_command()
    print(f"segsync: {' '.join(segsync)}")
    print(f"worker.cli from: {os.environ.get('PYTHONPATH') or 'the installed package'}")
    help_median = show(
        "segsync --help", measure(options.runs, lambda: wall_time([*segsync, "--help"]))
    )
    show(
        "segsync values --help",
        measure(options.runs, lambda: wall_time([*segsync, "values", "--help"])),
    )
    show("import worker.cli", measure(options.runs, import_time))
    verdict = "met" if help_median < HELP_AIM_SECONDS else "NOT met"
    print(f"aim: segsync --help under {HELP_AIM_SECONDS} s: {verdict}")


if __name__ == "__main__":
    main()
