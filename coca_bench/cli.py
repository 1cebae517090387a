"""Command line: ``coca-bench`` / ``python run_suite.py``. It parses and prints; the runner does the work.

    run_suite.py --tasks list
    run_suite.py --tasks zeroshot,retrieval --checkpoint open_clip:coca_ViT-B-32:laion2b_s13b_b90k
    run_suite.py --tasks zeroshot --param templates=simple --param TASK.logit_scale=50
    run_suite.py describe TASK
    run_suite.py compare --baseline tiny-coca
    run_suite.py report                      # results/report.html: summary, intervals, samples, provenance
    run_suite.py cache --info                # the feature cache's size; `cache prune --older-than 30` trims it
    run_suite.py train --output runs/demo    # train a small CoCa on generated scenes (coca_bench/training/)

``--tasks list`` imports no torch (the registry and the plugins keep heavy imports
inside functions), so it answers instantly.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from coca_bench import distributed
from coca_bench.errors import CocaBenchError
from coca_bench.params import describe_params
from coca_bench.registry import TaskSpec, all_tasks, get_task
from coca_bench.runner import RunConfig, RunError, load_task_registry
from coca_bench.settings import PRECISIONS, RunSettings

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


SUBCOMMANDS = ("run", "compare", "report", "describe", "train", "cache")
COMPARE_RESAMPLES, COMPARE_SEED = 1000, 0


def _plugins_option() -> argparse.ArgumentParser:
    """``--plugins``, shared by every subcommand that reads the task registry."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--plugins", type=Path, action="append", default=[], metavar="DIR", help="extra task plugin folder; repeatable"
    )
    return parent


def _comparison_options() -> argparse.ArgumentParser:
    """What ``compare`` and ``report`` share: the report shows the same comparison, with samples around it."""
    parent = argparse.ArgumentParser(add_help=False, parents=[_plugins_option()])
    parent.add_argument("--output", type=Path, default=Path("results"), help="results folder (default: results/)")
    parent.add_argument(
        "--baseline", default=None, metavar="NAME", help="checkpoint name to compare the others against"
    )
    parent.add_argument("--resamples", type=int, default=COMPARE_RESAMPLES, metavar="N",
                        help=f"bootstrap resamples (default {COMPARE_RESAMPLES})")  # fmt: skip
    parent.add_argument("--seed", type=int, default=COMPARE_SEED)
    return parent


def build_parser() -> argparse.ArgumentParser:
    """``coca-bench [run] ...`` (the default subcommand), ``compare``, ``report``, ``describe``, ``train``, ``cache``."""
    parser = argparse.ArgumentParser(
        prog="coca-bench",
        description="Benchmark CoCa image-text models. Without a subcommand: `run`. `coca-bench compare --help` "
        "compares stored runs; `coca-bench report` writes them as one HTML page; `coca-bench describe TASK` shows "
        "a task's parameters and metrics.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", parents=[_plugins_option()], help="evaluate checkpoints on tasks (default)")
    _add_run_options(run)
    compare = commands.add_parser(
        "compare", parents=[_comparison_options()], help="compare stored checkpoints with paired bootstrap CIs",
        description="Compare the checkpoints stored in an output folder, with paired bootstrap confidence intervals.",
    )  # fmt: skip
    compare.add_argument(
        "--published", default=None, metavar="NAME[,NAME]|all",
        help="also set each run beside these published models' figures (the CoCa paper's tables, open_clip's "
        "results), in the paper's layout; `all` for every one; written to OUTPUT/published.md",
    )  # fmt: skip
    commands.add_parser(
        "report", parents=[_comparison_options()], help="write OUTPUT/report.html",
        description="Write OUTPUT/report.html: one self-contained page (no network) with the summary, each task's "
        "comparison with its intervals, qualitative samples, skipped samples and the provenance of every result.",
    )  # fmt: skip
    describe = commands.add_parser("describe", parents=[_plugins_option()], help="a task's parameters and metrics")
    describe.add_argument("tasks", nargs="+", metavar="TASK")
    commands.add_parser("train", add_help=False, help="train a small CoCa on generated scenes (`train --help`)")
    commands.add_parser("cache", add_help=False, help="the feature cache: --info, prune (`cache --help`)")
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", default="all", help="list | all | NAME[,NAME...] (task or group names); default all")
    parser.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="[TASK.]KEY=VALUE",
        help="set a task parameter (VALUE parsed as JSON when it parses, else a string); KEY=VALUE sets it for every "
        "selected task that has KEY; repeatable; recorded and part of the result key",
    )
    parser.add_argument("--verbose", action="store_true", help="with --tasks list: each task's parameters and metrics")
    parser.add_argument(
        "--checkpoint",
        dest="checkpoints",
        action="append",
        default=[],
        metavar="SPEC",
        help="checkpoint dir/file, open_clip:ARCH:FILE_OR_TAG or a bundled name, optionally NAME=SPEC; "
        "repeatable or comma-separated (default: the bundled default checkpoints)",
    )
    parser.add_argument("--data-root", type=Path, default=None, help="datasets folder (default: bundled mini data)")
    parser.add_argument("--output", type=Path, default=Path("results"), help="results folder (default: results/)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=2, help="image loading processes (default 2)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="fp16 needs CUDA; bf16 works on CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="first N samples per task (recorded; never reused as a full run)",
    )
    parser.add_argument("--force", action="store_true", help="recompute results and cached features even when stored")
    parser.add_argument(
        "--strict", action="store_true", help="an unreadable image or video is fatal instead of a recorded skip"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="feature cache (default $COCA_BENCH_CACHE/features or ~/.cache/coca_bench/features)",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="NAME",
        help="after a run of two or more checkpoints, compare the stored results against this one "
        "(default: the last --checkpoint; demo-early for the default checkpoints)",
    )
    parser.add_argument(
        "--no-compare", dest="compare", action="store_false", help="skip the comparison after a multi-checkpoint run"
    )


def describe_task(spec: TaskSpec) -> str:
    """A task's parameters with their defaults, its metrics with direction and aggregation, and where it lives."""
    lines = [
        f"{spec.name}  (groups: {', '.join(spec.groups)}; dataset folder: {spec.dataset}/; version {spec.version})"
    ]
    if spec.description:
        lines.append(f"  {spec.description}")
    lines.append("  parameters (--param KEY=VALUE):" if spec.param_specs else "  parameters: none")
    lines += [f"    {line}" for line in describe_params(spec.param_specs)]
    lines.append("  metrics:")
    for metric in spec.metrics:
        direction = "higher is better" if metric.higher_is_better else "lower is better"
        how = "mean over samples" if metric.aggregation == "mean" else "task aggregate"
        note = f"; {metric.description}" if metric.description else ""
        lines.append(f"    {metric.name} ({direction}, {how}{note})")
    lines.append(f"  source: {spec.source}" + (f" (a variant of {spec.variant_of})" if spec.variant_of else ""))
    return "\n".join(lines)


def format_task_list(verbose: bool = False) -> str:
    """One task per line: name, groups, description, in aligned columns; ``verbose``: :func:`describe_task` each.

    Tasks come in :func:`~coca_bench.results.task_order` (headline tasks first, the same groups together), the order
    of the summaries and the comparison chart too."""
    from coca_bench.results import task_order

    registered = all_tasks()
    tasks = [registered[name] for name in task_order({name: spec.groups for name, spec in registered.items()})]
    if not tasks:
        return "No tasks are registered."
    if verbose:
        return "\n\n".join(describe_task(t) for t in tasks)
    rows = [(t.name, ",".join(t.groups), t.description) for t in tasks]
    name_width = max(len(r[0]) for r in rows)
    group_width = max(len(r[1]) for r in rows)
    return "\n".join(f"{n:<{name_width}}  {g:<{group_width}}  {d}".rstrip() for n, g, d in rows)


def _describe(args: argparse.Namespace) -> int:
    load_task_registry(args.plugins)
    print("\n\n".join(describe_task(get_task(name)) for name in args.tasks))
    return 0


def settings_from_args(args: argparse.Namespace) -> RunSettings:
    """The typed, validated run settings: the one place where command-line values become settings."""
    return RunSettings(
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        seed=args.seed,
        limit=args.limit,
        strict=args.strict,
        force=args.force,
        cache_dir=args.cache_dir,
        progress=args.progress,
    ).validated()


def _run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.tasks.strip() == "list":
        load_task_registry(args.plugins)
        print(format_task_list(verbose=args.verbose))
        return 0
    from coca_bench.results import format_results_table
    from coca_bench.runner import run_suite, split_checkpoint_list

    config = RunConfig(
        tasks=args.tasks,
        checkpoints=[entry for argument in args.checkpoints for entry in split_checkpoint_list(argument)],
        data_root=args.data_root,
        output=args.output,
        plugins=list(args.plugins),
        params=list(args.params),
        settings=settings_from_args(args),
        argv=list(argv),
    )
    records = run_suite(config)
    if not distributed.is_main():  # under torchrun, rank 0 prints (and compares); the others only encoded
        return 0
    print(format_results_table(records))
    print(f"\nResults in {args.output}/ (summary.md, summary.csv)")
    names = list(dict.fromkeys(r["checkpoint"]["name"] for r in records))
    if args.compare and len(names) > 1:
        # A first run should show whether its checkpoints differ, not only their numbers: the paired comparison
        # `compare` prints, against the last checkpoint (the default run's demo-early), with significance marked.
        baseline = args.baseline or names[-1]
        print(f"\nComparison against {baseline} (`run_suite.py compare --output {args.output} --baseline {baseline}`):")
        return compare_and_report(args.output, baseline, args.plugins)  # the `compare` command's own defaults
    print(f"HTML report: python run_suite.py report --output {args.output}  (writes {args.output / 'report.html'})")
    return 0


def _run_guard(args: argparse.Namespace) -> contextlib.ExitStack:
    """What a run holds while it runs: SIGTERM handled like Ctrl-C, and the output folder's lock (rank 0 only)."""
    from coca_bench.interrupts import sigterm_as_interrupt
    from coca_bench.locking import output_lock

    guard = contextlib.ExitStack()
    if args.tasks.strip() == "list":
        return guard
    guard.enter_context(sigterm_as_interrupt())
    if distributed.is_main():  # under torchrun only rank 0 writes the output folder
        try:
            guard.enter_context(output_lock(args.output))
        except BaseException:
            guard.close()
            raise
    return guard


def _check_stored(args: argparse.Namespace) -> None:
    """``compare`` and ``report`` need stored results, and a baseline among them."""
    from coca_bench.results import ResultStore

    if args.resamples < 1:
        raise RunError(f"--resamples must be at least 1; got {args.resamples}.")
    records = ResultStore(args.output).records()
    if not records:
        raise RunError(
            f"--output {args.output} holds no results; run the suite first or point --output at its results folder."
        )
    checkpoints = sorted({r["checkpoint"]["name"] for r in records})
    if args.baseline is not None and args.baseline not in checkpoints:
        raise RunError(
            f"--baseline {args.baseline!r} has no results in {args.output}; checkpoints there: {checkpoints}."
        )


def compare_and_report(
    output: Path,
    baseline: str | None,
    plugins: Sequence[Path] = (),
    resamples: int = COMPARE_RESAMPLES,
    seed: int = COMPARE_SEED,
) -> int:
    """Print the comparison, write comparison.{csv,md,png} and the report from the same rows (no recompute)."""
    from coca_bench.compare import compare_runs, format_comparison, order_rows, write_comparison
    from coca_bench.report import write_report

    tasks = load_task_registry(plugins)  # their declarations and aggregates drive the comparison
    rows = compare_runs(output, baseline, tasks, n_resamples=resamples, seed=seed, cache=True)  # cached if unchanged
    rows = order_rows(rows, {name: spec.groups for name, spec in tasks.items()})  # the order of `--tasks list`
    print(format_comparison(rows))
    written = write_comparison(rows, output)
    report = write_report(output, tasks, rows=rows, n_resamples=resamples)
    print("\nWrote " + ", ".join(str(p) for p in written.values()))
    print(f"HTML report: {report}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    models = None
    if args.published is not None:  # a misspelt name fails before the comparison's work
        from coca_bench.published import published

        models = published().select(args.published)
    _check_stored(args)
    status = compare_and_report(args.output, args.baseline, args.plugins, args.resamples, args.seed)
    if models is not None:
        print(write_published(args.output, models))
    return status


def write_published(output: Path, models: Sequence[str]) -> str:
    """The stored runs beside the published figures of ``models``: printed, and written to OUTPUT/published.md."""
    from coca_bench.fileio import atomic_write_text
    from coca_bench.published import compare_with_published, format_published_comparison, paper_view
    from coca_bench.results import ResultStore

    records = ResultStore(output).records()
    text = (
        "\nAgainst published figures (points; x 100 of the stored fractions)\n\n"
        + format_published_comparison(compare_with_published(records, models))
        + "\n\nIn the paper's layout († not comparable, see the notes)\n\n"
        + paper_view(records, models)
    )
    path = Path(output) / "published.md"
    atomic_write_text(path, "# coca-bench runs beside published figures\n" + text)
    return text + f"\nWrote {path}"


def _report(args: argparse.Namespace) -> int:
    from coca_bench.report import write_report

    _check_stored(args)
    tasks = load_task_registry(args.plugins)
    path = write_report(args.output, tasks, baseline=args.baseline, n_resamples=args.resamples, seed=args.seed)
    print(f"HTML report: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Under torchrun only rank 0 logs progress; the others' warnings and errors still show, prefixed.
    level, prefix = (logging.INFO, "") if distributed.is_main() else (logging.WARNING, f"[rank {distributed.rank()}] ")
    logging.basicConfig(level=level, format=prefix + "%(message)s", stream=sys.stderr)
    try:
        if not argv or argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help"):
            argv = ["run", *argv]  # the main command needs no subcommand: `run_suite.py --tasks all`
        if argv[0] == "train":  # programs with parsers of their own: everything after the name is theirs
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: see training.trainer
            from coca_bench.training.trainer import main as train_main

            return train_main(argv[1:])
        if argv[0] == "cache":
            from coca_bench.cache_admin import main as cache_main

            return cache_main(argv[1:])
        args = build_parser().parse_args(argv)
        if args.command in ("compare", "report", "describe"):
            return {"compare": _compare, "report": _report, "describe": _describe}[args.command](args)
        with _run_guard(args):
            return _run(args, argv[1:])
    except KeyboardInterrupt as exc:
        from coca_bench.interrupts import EXIT_TERMINATED, Terminated

        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"{how}: every task and cache chunk finished before this point is saved; rerun to continue.",
              file=sys.stderr)  # fmt: skip
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except Exception as exc:
        if not isinstance(exc, CocaBenchError):
            raise
        where = "" if distributed.is_main() else f"[rank {distributed.rank()}] "  # under torchrun: whose error
        print(f"{where}error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
