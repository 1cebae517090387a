"""Tables people read: the console table of a run and the summary files of an output folder."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from coca_bench.fileio import atomic_write_text
from coca_bench.results.frames import results_frame, summary_columns, summary_frame
from coca_bench.results.schema import comparability_differences, provenance_differences
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


def write_summary(output_dir: Path, metric_order: Mapping[str, Sequence[str]] | None = None) -> tuple[Path, Path]:
    """``summary.csv`` (full precision) and ``summary.md`` (4 decimals): one row per checkpoint, from the frames.

    Columns are ``<task>/<metric>``; an empty cell means the task was not run for that checkpoint, ``nan`` means
    the metric is undefined (e.g. acc5 with < 5 classes).
    """
    output_dir = Path(output_dir)
    records = ResultStore(output_dir).records()
    results = results_frame(records)
    columns = summary_columns(results, metric_order)
    values, ran = summary_frame(results, metric_order)

    # CSV: the floats themselves (str of a float is its shortest round-trip form), "" where not run, "nan" undefined
    cells = values.astype(object).where(ran, "").mask(ran & values.isna(), "nan")
    csv_text = cells.reset_index().to_csv(index=False, lineterminator="\n")
    md_header = ["checkpoint", *(f"{t}/{m} {'↑' if up else '↓'}" for t, m, up in columns)]
    md_rows = [
        [checkpoint, *(format_number(v) if r else "" for v, r in zip(values.loc[checkpoint], ran.loc[checkpoint]))]
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
    if notes:
        markdown += "\nNot like for like (compare with care):\n\n" + "".join(f"- {n}\n" for n in notes)
    csv_path, md_path = output_dir / SUMMARY_CSV, output_dir / SUMMARY_MD
    atomic_write_text(csv_path, csv_text)
    atomic_write_text(md_path, markdown)
    return csv_path, md_path


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
    "SUMMARY_CSV",
    "SUMMARY_MD",
    "format_number",
    "format_results_table",
    "render_markdown_table",
    "render_text_table",
    "summary_notes",
    "write_summary",
]
