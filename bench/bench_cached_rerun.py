"""A rerun with nothing to do: ``python run_suite.py --tasks all`` a second time, this checkout against an earlier
commit (issue 19 §1: under 2 s on 2 cores).

    python bench/bench_cached_rerun.py [--output /tmp/rerun] [--before 6a5e068] [--repeats 3] [--no-before]

Each side first makes its own default run (untimed: results keys differ between versions, so each must have stored
its own), then reruns the same command ``--repeats`` times in fresh processes: interpreter start, imports, reading
the results and deciding that every one is reusable. The before side runs from a ``git archive`` copy of the commit,
which leaves the checkout untouched. Reported: the median wall and CPU seconds of the reruns, and whether the rerun
imported torch (``python -X importtime``). Writes ``bench/out/bench_cached_rerun.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_compare import extract_commit
from timing import print_cpu_line

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 2.0
BEFORE = "6a5e068"  # the last commit before issue 19: every model built and the summary rewritten per task


def _run(source: Path, output: Path) -> tuple[float, float, bool]:
    """(wall s, CPU s, imported torch) of ``run_suite.py --tasks all --output OUTPUT`` from ``source``."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(source / "run_suite.py"), "--tasks", "all", "--output", str(output),
         "--no-progress", "--no-compare"],
        cwd=source, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(source)},
    )  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"run_suite.py from {source} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    torch = any(line.rstrip().endswith("| torch") for line in proc.stderr.splitlines())
    return wall, cpu, torch


def measure(source: Path, output: Path, repeats: int) -> dict[str, float | bool]:
    print(f"{source}: default run into {output} (untimed)...", flush=True)
    _run(source, output)
    runs = [_run(source, output) for _ in range(repeats)]
    return {
        "wall_s": statistics.median(r[0] for r in runs),
        "cpu_s": statistics.median(r[1] for r in runs),
        "imports_torch": any(r[2] for r in runs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=None, help="a scratch folder (default: a temporary one)")
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--no-before", dest="with_before", action="store_false", help="time this checkout only")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print_cpu_line()
    with tempfile.TemporaryDirectory() as scratch:
        base = args.output or Path(scratch)
        figures = {"now": measure(ROOT, base / "now", args.repeats)}
        if args.with_before:
            tree = extract_commit(args.before, Path(scratch))
            figures[args.before] = measure(tree, base / "before", args.repeats)
    for name, figure in figures.items():
        print(f"{name:>10}: rerun {figure['wall_s']:.2f} s wall, {figure['cpu_s']:.2f} s CPU, "
              f"imports torch: {figure['imports_torch']}")  # fmt: skip
    verdict = "within" if figures["now"]["wall_s"] <= BUDGET_S else "OVER"
    print(f"budget {BUDGET_S:.0f} s: {verdict}")
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_cached_rerun.json").write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
