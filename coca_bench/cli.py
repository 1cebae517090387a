"""Command line: ``coca-bench`` / ``python run_suite.py``. It parses and prints; the runner does the work.

    run_suite.py --tasks list
    run_suite.py --tasks zeroshot,coco_retrieval --checkpoint open_clip:coca_ViT-B-32:laion2b_s13b_b90k
    run_suite.py compare --baseline tiny-coca

``--tasks list`` imports no torch (the registry and the plugins keep heavy imports
inside functions), so it answers instantly.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from coca_bench.registry import RegistryError, all_tasks
from coca_bench.runner import PRECISIONS, RunConfig, RunError, load_task_registry

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coca-bench",
        description="Benchmark CoCa image-text models. `coca-bench compare --help` compares stored runs.",
    )
    parser.add_argument("--tasks", default="all", help="list | all | NAME[,NAME...] (task or group names); default all")
    parser.add_argument(
        "--checkpoint",
        dest="checkpoints",
        action="append",
        default=[],
        metavar="SPEC",
        help="checkpoint dir/file, open_clip:ARCH:FILE_OR_TAG or a bundled name, optionally NAME=SPEC; "
        "repeatable (default: the bundled default checkpoints)",
    )
    parser.add_argument("--data-root", type=Path, default=None, help="datasets folder (default: bundled mini data)")
    parser.add_argument("--output", type=Path, default=Path("results"), help="results folder (default: results/)")
    parser.add_argument("--plugins", type=Path, action="append", default=[], metavar="DIR", help="extra task plugin folder; repeatable")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=2, help="image loading processes (default 2)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="fp16 needs CUDA; bf16 works on CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="first N samples per task (recorded; never reused as a full run)")
    parser.add_argument("--force", action="store_true", help="recompute results even when a matching one is stored")
    parser.add_argument("--strict", action="store_true", help="an unreadable image or video is fatal instead of a recorded skip")
    parser.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default $COCA_BENCH_CACHE/features or ~/.cache/coca_bench/features)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return parser


def build_compare_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coca-bench compare",
        description="Compare the checkpoints stored in an output folder, with paired bootstrap confidence intervals.",
    )
    parser.add_argument("--output", type=Path, default=Path("results"), help="results folder (default: results/)")
    parser.add_argument("--baseline", default=None, metavar="NAME", help="checkpoint name to compare the others against")
    parser.add_argument("--resamples", type=int, default=1000, metavar="N", help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plugins", type=Path, action="append", default=[], metavar="DIR", help="extra task plugin folder; repeatable")
    return parser


def format_task_list() -> str:
    """One task per line: name, groups, description, in aligned columns."""
    tasks = sorted(all_tasks().values(), key=lambda t: t.name)
    if not tasks:
        return "No tasks are registered."
    rows = [(t.name, ",".join(t.groups), t.description) for t in tasks]
    name_width = max(len(r[0]) for r in rows)
    group_width = max(len(r[1]) for r in rows)
    return "\n".join(f"{n:<{name_width}}  {g:<{group_width}}  {d}".rstrip() for n, g, d in rows)


def _run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.tasks.strip() == "list":
        load_task_registry(args.plugins)
        print(format_task_list())
        return 0
    from coca_bench.results import format_results_table
    from coca_bench.runner import run_suite

    config = RunConfig(
        tasks=args.tasks,
        checkpoints=list(args.checkpoints),
        data_root=args.data_root,
        output=args.output,
        plugins=list(args.plugins),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        limit=args.limit,
        force=args.force,
        strict=args.strict,
        cache_dir=args.cache_dir,
        progress=args.progress,
        argv=list(argv),
    )
    records = run_suite(config)
    print(format_results_table(records))
    print(f"\nResults in {args.output}/ (summary.md, summary.csv)")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from coca_bench.compare import compare_runs, format_comparison, recompute_from_specs, write_comparison
    from coca_bench.results import collect_records

    if args.resamples < 1:
        raise RunError(f"--resamples must be at least 1; got {args.resamples}.")
    records = collect_records(args.output)
    if not records:
        raise RunError(f"--output {args.output} holds no results; run the suite first or point --output at its results folder.")
    checkpoints = sorted({r["checkpoint"]["name"] for r in records})
    if args.baseline is not None and args.baseline not in checkpoints:
        raise RunError(f"--baseline {args.baseline!r} has no results in {args.output}; checkpoints there: {checkpoints}.")
    tasks = load_task_registry(args.plugins)
    # Registered tasks recompute non-mean metrics with their own aggregate, under the parameters they ran with.
    baseline = args.baseline or checkpoints[0]  # compare_runs' own default
    ordered = sorted(records, key=lambda r: r["checkpoint"]["name"] == baseline)  # the baseline's params win
    params_by_task = {r["task"]["name"]: (r.get("config") or {}).get("params") or {} for r in ordered}
    rows = compare_runs(
        args.output,
        baseline=args.baseline,
        recompute_for=recompute_from_specs(tasks, params_by_task),
        n_resamples=args.resamples,
        seed=args.seed,
    )
    print(format_comparison(rows))
    written = write_comparison(rows, args.output)
    print("\nWrote " + ", ".join(str(p) for p in written.values()))
    return 0


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Errors that mean "your input is wrong": printed as one line, never as a traceback."""
    from coca_bench.data import AnnotationFormatError, DatasetLayoutError, DatasetNotFoundError, UnreadableMediaError

    types: list[type[BaseException]] = [
        RegistryError,
        RunError,
        AnnotationFormatError,
        DatasetLayoutError,
        DatasetNotFoundError,
        UnreadableMediaError,
    ]
    features = sys.modules.get("coca_bench.features")  # imports torch: only consult it if the run loaded it
    if features is not None:
        types.append(features.FeatureExtractionError)
    return tuple(types)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if argv[:1] == ["compare"]:
            return _compare(build_compare_parser().parse_args(argv[1:]))
        return _run(build_run_parser().parse_args(argv), argv)
    except KeyboardInterrupt:
        print("interrupted: every task finished before this point is saved; rerun to continue.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if not isinstance(exc, _user_error_types()):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
