"""Tables people read: the console table of a run and the summary files of an output folder."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from coca_bench.fileio import atomic_write_text
from coca_bench.results.frames import results_frame, summary_columns, summary_frame
from coca_bench.results.schema import comparability_differences, provenance_differences
from coca_bench.results.store import ResultStore

if TYPE_CHECKING:
    import pandas as pd

    from coca_bench.registry import GroupAverage

SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"

DEFAULT_GROUP_ORDER: tuple[str, ...] = (
    "image", "video", "zeroshot", "retrieval", "captioning", "vqa", "multimodal", "classification",
)  # fmt: skip
"""How task groups rank in every listing (``--tasks list``, the summaries, the comparison chart): image before video,
then zero-shot, retrieval, captioning, VQA. Groups not named here rank after these, alphabetically."""
TRAINED_GROUPS: tuple[str, ...] = ("probe",)
"""Groups of tasks that train something on the frozen features: listed after the tasks that score the checkpoint as
it is (the headline numbers)."""


def task_order(groups: Mapping[str, Sequence[str]]) -> list[str]:
    """Task names in reading order: headline tasks first, tasks with the same groups together.

    ``groups``: task name -> its groups (as ``--tasks list`` shows them), in registry order, which breaks ties. The
    order comes from the groups alone, so a plugin task finds its place without being named anywhere.
    """
    rank = {group: i for i, group in enumerate(DEFAULT_GROUP_ORDER)}
    position = {name: i for i, name in enumerate(groups)}

    def key(name: str) -> tuple[bool, tuple[int, ...], int, tuple[str, ...]]:
        names = tuple(groups[name])
        trained = any(group in TRAINED_GROUPS for group in names)
        # Ranked groups in the task's order, then an end mark ranked after them all. Groups of no rank (a family such
        # as imagenet_robustness) do not move a task: ImageNet stays first among the image zero-shot tasks.
        ranked = tuple(rank[group] for group in names if group in rank) + (len(rank),)
        return trained, ranked, position[name], tuple(sorted(g for g in names if g not in rank))

    return sorted(groups, key=key)


def record_groups(records: Sequence[Mapping]) -> dict[str, tuple[str, ...]]:
    """Task name -> groups, as the stored records declare them (first record of each task wins)."""
    groups: dict[str, tuple[str, ...]] = {}
    for record in records:
        task = record["task"]
        groups.setdefault(task["name"], tuple(task.get("groups") or ()))
    return groups


def ordered_metric_order(
    records: Sequence[Mapping], metric_order: Mapping[str, Sequence[str]] | None = None
) -> dict[str, list[str]]:
    """``metric_order`` (task -> declared metrics) re-keyed in :func:`task_order`, covering every stored task: what
    :func:`~coca_bench.results.summary_columns` needs to lay the summary out in reading order."""
    order = dict(metric_order or {})
    stored = record_groups(records)
    known = {name: stored[name] for name in order if name in stored}
    known.update({name: stored[name] for name in sorted(stored) if name not in known})
    return {name: list(order.get(name, ())) for name in task_order(known)}


def undefined_columns(values: pd.DataFrame) -> list[str]:
    """Summary columns with no defined value for any checkpoint (acc5 with 3 classes): left out of the tables."""
    return [column for column in values.columns if values[column].isna().all()]


def format_number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return ""
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def render_text_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """Padded plain-text columns; ``align`` has one letter per column, ``l`` or ``r`` (default: first l, rest r)."""
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if a == "l" else str(c).rjust(w) for c, w, a in zip(cells, widths, align)
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def render_markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    align = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join([line(header), "|" + "|".join(align) + "|", *(line(r) for r in rows)])


def write_summary(output_dir: Path, metric_order: Mapping[str, Sequence[str]] | None = None) -> tuple[Path, Path]:
    """``summary.csv`` (full precision) and ``summary.md`` (4 decimals): one row per checkpoint, from the frames.

    Columns are ``<task>/<metric>``, tasks in :func:`task_order` (headline tasks first, grouped); an empty cell means
    the task was not run for that checkpoint, ``nan`` means the metric is undefined (e.g. acc5 with < 5 classes). A
    metric undefined for every checkpoint stays in the CSV (scripts read fixed columns) but is left out of the
    Markdown table, which says so below it.
    """
    output_dir = Path(output_dir)
    records = ResultStore(output_dir).records()
    results = results_frame(records)
    metric_order = ordered_metric_order(records, metric_order)
    values, ran = summary_frame(results, metric_order)
    values, ran, averages = add_group_averages(values, ran)

    # CSV: the floats themselves (str of a float is its shortest round-trip form), "" where not run, "nan" undefined
    cells = values.astype(object).where(ran, "").mask(ran & values.isna(), "nan")
    csv_text = cells.reset_index().to_csv(index=False, lineterminator="\n")
    undefined = undefined_columns(values)
    columns = [(t, m, up) for t, m, up in summary_columns(results, metric_order) if f"{t}/{m}" not in undefined]
    columns += [(a.group, f"avg_{a.metric}", True) for a in averages if a.column not in undefined]
    shown = [f"{t}/{m}" for t, m, _ in columns]
    md_header = ["checkpoint", *(f"{t}/{m} {'↑' if up else '↓'}" for t, m, up in columns)]
    md_rows = [
        [
            checkpoint,
            *(format_number(v) if r else "" for v, r in zip(values.loc[checkpoint, shown], ran.loc[checkpoint, shown])),
        ]
        for checkpoint in values.index
    ]
    by_checkpoint: dict[str, dict[str, dict]] = {}
    for record in records:
        by_checkpoint.setdefault(record["checkpoint"]["name"], {})[record["task"]["name"]] = record
    notes = summary_notes(by_checkpoint)
    markdown = "# coca-bench summary\n\n" + (
        render_markdown_table(md_header, md_rows) if columns else "No results yet."
    )
    markdown += "\n\n↑ higher is better, ↓ lower is better; empty: not run; nan: undefined.\n"
    if undefined:
        markdown += f"\nLeft out, undefined for every checkpoint: {', '.join(undefined)}.\n"
    if notes:
        markdown += "\nNot like for like (compare with care):\n\n" + "".join(f"- {n}\n" for n in notes)
    csv_path, md_path = output_dir / SUMMARY_CSV, output_dir / SUMMARY_MD
    atomic_write_text(csv_path, csv_text)
    atomic_write_text(md_path, markdown)
    return csv_path, md_path


def add_group_averages(
    values: pd.DataFrame, ran: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, list[GroupAverage]]:
    """``values`` and ``ran`` with a column for each declared group average (:func:`coca_bench.registry.group_average`)
    whose member tasks all have a column, and those averages; a checkpoint's cell is defined only when every member
    has a value. The columns are joined at once (one per column would fragment a wide frame)."""
    import pandas as pd

    from coca_bench.registry import group_averages

    added = []
    means: dict[str, pd.Series] = {}
    all_ran: dict[str, pd.Series] = {}
    for average in group_averages():
        members = [f"{task}/{average.metric}" for task in average.members()]
        if len(members) < 2 or not all(column in values.columns for column in members):
            continue
        means[average.column] = values[members].mean(axis=1, skipna=False)
        all_ran[average.column] = ran[members].all(axis=1)
        added.append(average)
    if not added:
        return values, ran, added
    return (
        pd.concat([values, pd.DataFrame(means, index=values.index)], axis=1),
        pd.concat([ran, pd.DataFrame(all_ran, index=ran.index)], axis=1),
        added,
    )


def summary_notes(by_checkpoint: Mapping[str, Mapping[str, dict]]) -> list[str]:
    """Tasks whose runs differ across checkpoints in more than the weights (another limit, split, params, suite code
    or library versions)."""
    notes = []
    tasks = sorted({t for per_task in by_checkpoint.values() for t in per_task})
    for task in tasks:
        runs = [(c, by_checkpoint[c][task]) for c in sorted(by_checkpoint) if task in by_checkpoint[c]]
        first_name, first = runs[0]
        for name, record in runs[1:]:
            settings = comparability_differences(first, record)
            differences = ([f"differ in {', '.join(settings)}"] if settings else []) + provenance_differences(
                first, record
            )
            if differences:
                notes.append(f"{task}: {name} vs {first_name}: {'; '.join(differences)}")
    return notes


def format_results_table(records: list[dict]) -> str:
    """The console table printed at the end of a run: one row per (checkpoint, task)."""
    if not records:
        return "No results."
    header = ["checkpoint", "task", "samples", "skipped", "time_s", "metrics"]
    rows = []
    for record in sorted(records, key=lambda r: (r["checkpoint"]["name"], r["task"]["name"])):
        wall = (record.get("run") or {}).get("wall_time_s")
        metrics = "  ".join(f"{name}={format_number(value)}" for name, value in record["metrics"].items())
        rows.append(
            [
                record["checkpoint"]["name"],
                record["task"]["name"],
                str(record.get("num_samples", "")),
                str(len(record.get("skipped") or [])),
                "" if wall is None else f"{float(wall):.1f}",
                metrics,
            ]
        )
    table = render_text_table(header, rows, align="llrrrl")
    warnings = [
        f"warning: {r['checkpoint']['name']}/{r['task']['name']}: {w}"
        for r in sorted(records, key=lambda r: (r["checkpoint"]["name"], r["task"]["name"]))
        for w in r.get("warnings") or []
    ]
    return "\n".join([table, *warnings])


__all__ = [
    "DEFAULT_GROUP_ORDER",
    "add_group_averages",
    "SUMMARY_CSV",
    "SUMMARY_MD",
    "TRAINED_GROUPS",
    "format_number",
    "format_results_table",
    "render_markdown_table",
    "ordered_metric_order",
    "record_groups",
    "render_text_table",
    "summary_notes",
    "task_order",
    "undefined_columns",
    "write_summary",
]
