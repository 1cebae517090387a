"""Wall time of ``compare`` and ``report`` on the default run, this checkout against an earlier commit (issue 19 §2).

    python bench/bench_compare.py [--output results] [--before HEAD] [--repeats 3]

Every figure is one command as a user types it, in a fresh process (interpreter start and imports included):
``run_suite.py compare --output OUT --baseline demo-early`` and ``run_suite.py report --output OUT --baseline
demo-early``. This checkout's commands are timed with the comparison cache emptied first (``computed``) and with
nothing new since the last comparison (``cached``); the same two commands of ``--before`` (by default the last
commit before the vectorised bootstrap and the cache) run from a copy of that commit made with ``git archive``,
which leaves the checkout untouched. The contenders alternate round by round (``bench/timing.py``), so a busy spell on a shared
machine hits them alike, and the medians use the rounds no neighbour disturbed when there are any.

``OUT`` must hold the default run (``python run_suite.py --tasks all``); when it does not, that run is made first
(3 to 5 minutes on 2 cores, not timed). Writes ``bench/out/bench_compare.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from timing import interleaved, quiet_round_count

from coca_bench.compare.cache import CACHE_FOLDER
from coca_bench.hardware import detect

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 5.0  # issue 19: compare and report each under 5 s on 2 cores
BASELINE = "demo-early"
BEFORE = "b8ab25c"  # the last commit with the per-resample bootstrap and no comparison cache


def run_cli(source: Path, args: list[str]) -> float:
    """``python run_suite.py ARGS`` from the source tree ``source`` (its own ``coca_bench`` comes first on the path);
    returns the CPU seconds it used (user + system): on a shared machine, the figure that busy neighbours inflate
    least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, str(source / "run_suite.py"), *args], cwd=source, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"`run_suite.py {' '.join(args)}` from {source} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def ensure_default_run(output: Path) -> None:
    if all((output / name / "coco_captioning.json").is_file() for name in ("demo", BASELINE)):
        return
    print(f"{output} holds no default run: running `run_suite.py --tasks all --output {output}` first (untimed)...")
    start = time.perf_counter()
    run_cli(ROOT, ["--tasks", "all", "--output", str(output), "--no-progress", "--no-compare"])
    print(f"  done in {time.perf_counter() - start:.0f} s")


def extract_commit(rev: str, into: Path) -> Path:
    """The tree of ``rev`` in ``into`` (read-only git: ``git archive``), with its ``tasks/`` where a wheel puts them, so
    that its own task plugins load rather than this checkout's (the editable install maps them here)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev], capture_output=True, check=True)
    tree = into / "tree"
    tree.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    (tree / "coca_bench" / "builtin_tasks").symlink_to(tree / "tasks", target_is_directory=True)
    return tree


def contenders(output: Path, before: Path | None) -> dict[str, Callable[[], float]]:
    compare = ["compare", "--output", str(output), "--baseline", BASELINE]
    report = ["report", "--output", str(output), "--baseline", BASELINE]

    def empty_cache_then(args: list[str]) -> Callable[[], float]:
        def run() -> float:
            shutil.rmtree(output / CACHE_FOLDER, ignore_errors=True)
            return run_cli(ROOT, args)

        return run

    timed = {
        "compare, computed": empty_cache_then(compare),
        "compare, cached": lambda: run_cli(ROOT, compare),
        "report, computed": empty_cache_then(report),
        "report, cached": lambda: run_cli(ROOT, report),
    }
    if before is not None:
        timed = {"before: compare": lambda: run_cli(before, compare), "before: report": lambda: run_cli(before, report),
                 **timed}  # fmt: skip
    return timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "results", help="folder holding the default run")
    parser.add_argument(
        "--before",
        default=BEFORE,
        help=f"commit to time against (default {BEFORE}, the last one before the vectorised "
        "bootstrap and the comparison cache; '' for this checkout only)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    output = args.output.resolve()
    cpu = detect().describe()
    print(f"{cpu}; {os.cpu_count()} cores; output {output}")
    ensure_default_run(output)
    with tempfile.TemporaryDirectory() as tmp:
        before = extract_commit(args.before, Path(tmp)) if args.before else None
        results = interleaved(contenders(output, before), repeats=args.repeats, quiet_wait_s=10.0)
    quiet, rounds = quiet_round_count(next(iter(results.values())))
    summary = {name: measurement.summary(items=1) for name, measurement in results.items()}
    for name, measurement in results.items():  # CPU seconds of the same (kept) rounds
        kept = [cpu for cpu, ok in zip(measurement.outputs, measurement.quiet_rounds) if ok] or measurement.outputs
        summary[name]["median_cpu_s"] = statistics.median(kept)
    report = {
        "commands": "python run_suite.py {compare,report} --output OUT --baseline demo-early",
        "before": args.before or None,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "quiet_rounds": quiet,
        "rounds": rounds,
        "budget_s": BUDGET_S,
        "seconds": {name: {k: v for k, v in s.items() if k != "items_per_s"} for name, s in summary.items()},
    }
    out = ROOT / "bench" / "out" / "bench_compare.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n| command | wall s, median (min-max) | CPU s, median |  ({quiet}/{rounds} quiet rounds)\n|---|---:|---:|")
    for name, s in summary.items():
        print(f"| {name} | {s['median_s']:.2f} ({s['min_s']:.2f}-{s['max_s']:.2f}) | {s['median_cpu_s']:.2f} |")
    # With no quiet round the wall figures measure the neighbours; CPU seconds then stand in for a quiet machine's wall
    # time (these commands run on one core, so on a quiet machine their wall time is about their CPU time).
    basis = "median_s" if quiet else "median_cpu_s"
    after = [summary[name][basis] for name in ("compare, computed", "report, computed")]
    verdict = "met" if max(after) < BUDGET_S else "MISSED"
    print(f"budget {BUDGET_S:.0f} s each ({'wall' if quiet else 'CPU'} time): {verdict}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
