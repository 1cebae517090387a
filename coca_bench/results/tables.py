"""Tables people read: the console table of a run and the summary files of an output folder."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from coca_bench.fileio import atomic_write_text
from coca_bench.results.schema import comparability_differences, declared_metrics
from coca_bench.results.store import ResultStore

SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"


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


def render_csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _summary_columns(
    records: Sequence[dict], metric_order: Mapping[str, Sequence[str]] | None
) -> list[tuple[str, str, bool]]:
    """(task, metric, higher_is_better) in a stable order: registry order when given, else task names sorted."""
    declared: dict[str, list[str]] = {}
    direction: dict[tuple[str, str], bool] = {}
    for record in records:
        task = record["task"]["name"]
        names = declared.setdefault(task, [])
        for metric in [*(m["name"] for m in declared_metrics(record)), *record["metrics"]]:
            if metric in record["metrics"] and metric not in names:
                names.append(metric)
                direction[(task, metric)] = bool(record.get("higher_is_better", {}).get(metric, True))
    order = dict(metric_order or {})
    tasks = [t for t in order if t in declared] + sorted(t for t in declared if t not in order)
    columns = []
    for task in tasks:
        present = declared[task]
        wanted = [m for m in order.get(task, ()) if m in present] + [m for m in present if m not in order.get(task, ())]
        columns += [(task, metric, direction[(task, metric)]) for metric in wanted]
    return columns


def write_summary(output_dir: Path, metric_order: Mapping[str, Sequence[str]] | None = None) -> tuple[Path, Path]:
    """``summary.csv`` (full precision) and ``summary.md`` (4 decimals): one row per checkpoint.

    Columns are ``<task>/<metric>``; an empty cell means the task was not run for that checkpoint, ``nan`` means
    the metric is undefined (e.g. acc5 with < 5 classes).
    """
    output_dir = Path(output_dir)
    records = ResultStore(output_dir).records()
    columns = _summary_columns(records, metric_order)
    by_checkpoint: dict[str, dict[str, dict]] = {}
    for record in records:
        by_checkpoint.setdefault(record["checkpoint"]["name"], {})[record["task"]["name"]] = record

    def cell(checkpoint: str, task: str, metric: str, digits: int | None) -> str:
        """``digits=None``: full precision (CSV)."""
        record = by_checkpoint[checkpoint].get(task)
        value = None if record is None else record["metrics"].get(metric)
        if value is None or digits is not None:
            return format_number(value, digits or 4)
        return "nan" if math.isnan(value) else repr(value)

    checkpoints = sorted(by_checkpoint)
    csv_header = ["checkpoint", *(f"{t}/{m}" for t, m, _ in columns)]
    csv_rows = [[c, *(cell(c, t, m, None) for t, m, _ in columns)] for c in checkpoints]
    md_header = ["checkpoint", *(f"{t}/{m} {'↑' if up else '↓'}" for t, m, up in columns)]
    md_rows = [[c, *(cell(c, t, m, 4) for t, m, _ in columns)] for c in checkpoints]
    notes = _summary_notes(by_checkpoint)
    markdown = "# coca-bench summary\n\n" + (
        render_markdown_table(md_header, md_rows) if columns else "No results yet."
    )
    markdown += "\n\n↑ higher is better, ↓ lower is better; empty: not run; nan: undefined.\n"
    if notes:
        markdown += "\nNot like for like (compare with care):\n\n" + "".join(f"- {n}\n" for n in notes)
    csv_path, md_path = output_dir / SUMMARY_CSV, output_dir / SUMMARY_MD
    atomic_write_text(csv_path, render_csv(csv_header, csv_rows))
    atomic_write_text(md_path, markdown)
    return csv_path, md_path


def _summary_notes(by_checkpoint: Mapping[str, Mapping[str, dict]]) -> list[str]:
    """Tasks whose runs differ across checkpoints in more than the weights (another limit, split, params...)."""
    notes = []
    tasks = sorted({t for per_task in by_checkpoint.values() for t in per_task})
    for task in tasks:
        runs = [(c, by_checkpoint[c][task]) for c in sorted(by_checkpoint) if task in by_checkpoint[c]]
        first_name, first = runs[0]
        for name, record in runs[1:]:
            differences = comparability_differences(first, record)
            if differences:
                notes.append(f"{task}: {name} vs {first_name} differ in {', '.join(differences)}")
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
    "SUMMARY_CSV",
    "SUMMARY_MD",
    "format_number",
    "format_results_table",
    "render_csv",
    "render_markdown_table",
    "render_text_table",
    "write_summary",
]
