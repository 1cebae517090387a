"""Comparison tables and chart: console text, ``comparison.md``, ``comparison.csv`` and ``comparison.png``.

The tables are rendered from :func:`comparison_frame` (one row per cell), the same frame the HTML report reads.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coca_bench.compare.matching import MetricComparison
from coca_bench.fileio import atomic_write_bytes, atomic_write_text
from coca_bench.results import render_markdown_table, render_text_table

if TYPE_CHECKING:
    import pandas as pd

COMPARISON_CSV = "comparison.csv"
COMPARISON_MD = "comparison.md"
COMPARISON_PNG = "comparison.png"


def _checkpoint_columns(rows: Sequence[MetricComparison]) -> list[str]:
    baselines = list(dict.fromkeys(row.baseline for row in rows))
    others = sorted({c for row in rows for c in row.cells} - set(baselines))
    return baselines + others


COMPARISON_COLUMNS: tuple[str, ...] = (
    "task", "metric", "higher_is_better", "baseline", "checkpoint", "baseline_value", "value",
    "delta", "ci_low", "ci_high", "significant", "n_paired", "n_total", "note",
)  # fmt: skip
"""The columns of ``comparison.csv``: one line per (task, metric, checkpoint) cell."""


def comparison_frame(rows: Sequence[MetricComparison]) -> pd.DataFrame:
    """One row per (task, metric, checkpoint) cell, in :data:`COMPARISON_COLUMNS`, plus ``baseline_run_value`` (the
    baseline's own value on all its samples, the row's baseline column), ``significantly_better`` (significant in
    the metric's good direction) and ``confidence``. NaN bounds: no interval (the note says why)."""
    import pandas as pd

    records = [
        {
            "task": row.task,
            "metric": row.metric,
            "higher_is_better": row.higher_is_better,
            "baseline": row.baseline,
            "checkpoint": checkpoint,
            "baseline_value": cell.baseline_value,
            "value": cell.value,
            "delta": cell.delta,
            "ci_low": cell.ci_low,
            "ci_high": cell.ci_high,
            "significant": cell.significant,
            "n_paired": cell.n_paired,
            "n_total": cell.n_total,
            "note": cell.note,
            "baseline_run_value": row.baseline_value,
            "significantly_better": row.is_better(checkpoint),
            "confidence": row.confidence,
        }  # fmt: skip
        for row in rows
        for checkpoint, cell in row.cells.items()
    ]
    columns = [*COMPARISON_COLUMNS, "baseline_run_value", "significantly_better", "confidence"]
    frame = pd.DataFrame(records, columns=columns)
    for column in ("baseline_value", "value", "delta", "ci_low", "ci_high", "baseline_run_value", "confidence"):
        frame[column] = frame[column].astype("float64")
    for column in ("higher_is_better", "significant", "significantly_better"):
        frame[column] = frame[column].astype(bool)
    for column in ("n_paired", "n_total"):  # None: no per-sample records
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    return frame


def _cell_text(cell: Mapping[str, Any]) -> str:
    if math.isnan(cell["ci_low"]):
        return f"{cell['value']:.4f} {cell['delta']:+.4f} (no CI)"
    star = " *" if cell["significant"] else ""
    return f"{cell['value']:.4f} {cell['delta']:+.4f} [{cell['ci_low']:+.4f}, {cell['ci_high']:+.4f}]{star}"


def _cell_note(cell: Mapping[str, Any]) -> str:
    paired, total = cell["n_paired"], cell["n_total"]
    if not _missing(paired) and not _missing(total) and paired < total:
        return f"{cell['note']} (baseline there: {cell['baseline_value']:.4f})"
    return cell["note"]


def _missing(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def _comparison_table(rows: Sequence[MetricComparison]) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, body and numbered footnotes (notes are shared by the cells that cite them), from the frame."""
    frame = comparison_frame(rows)
    baselines = list(dict.fromkeys(frame["baseline"]))
    columns = baselines + sorted(set(frame["checkpoint"]) - set(baselines))
    footnotes: list[str] = []
    body = []
    for (task, metric), group in frame.groupby(["task", "metric"], sort=False):
        first = group.iloc[0]
        by_checkpoint = {cell["checkpoint"]: cell for cell in group.to_dict("records")}
        cells = [f"{task}/{metric} {'↑' if first['higher_is_better'] else '↓'}"]
        for checkpoint in columns:
            if checkpoint == first["baseline"]:
                cells.append(f"{first['baseline_run_value']:.4f}")
                continue
            cell = by_checkpoint.get(checkpoint)
            if cell is None:
                cells.append("")
                continue
            text, note = _cell_text(cell), _cell_note(cell)
            if note:
                if note not in footnotes:
                    footnotes.append(note)
                text += f" [{footnotes.index(note) + 1}]"
            cells.append(text)
        body.append(cells)
    header = ["task/metric", *(f"{c} (baseline)" if c in baselines else c for c in columns)]
    return header, body, footnotes


def _legend(rows: Sequence[MetricComparison]) -> str:
    confidence = rows[0].confidence if rows else 0.95
    return (
        f"Cells: value, delta vs baseline [{confidence:.0%} paired bootstrap CI]; "
        "* = CI excludes 0 (significant); ↑/↓ = higher/lower is better."
    )


def format_comparison(rows: Sequence[MetricComparison]) -> str:
    """Console table: rows per task/metric, columns per checkpoint, ``value delta [lo, hi] *``."""
    if not rows:
        return "Nothing to compare: no task has results for the baseline and another checkpoint."
    header, body, footnotes = _comparison_table(rows)
    lines = [render_text_table(header, body, align="l" * len(header)), "", _legend(rows)]
    lines += [f"[{i}] {note}" for i, note in enumerate(footnotes, start=1)]
    return "\n".join(lines)


def _comparison_markdown(rows: Sequence[MetricComparison]) -> str:
    if not rows:
        return "# Checkpoint comparison\n\nNothing to compare.\n"
    header, body, footnotes = _comparison_table(rows)
    text = f"# Checkpoint comparison\n\n{render_markdown_table(header, body)}\n\n{_legend(rows)}\n"
    if footnotes:
        text += "\n" + "".join(f"{i}. {note}\n" for i, note in enumerate(footnotes, start=1))
    return text


def comparison_csv(rows: Sequence[MetricComparison]) -> str:
    """``comparison.csv``: full-precision floats, empty where there is no interval or no per-sample count."""
    frame = comparison_frame(rows)[list(COMPARISON_COLUMNS)]
    return frame.to_csv(index=False, na_rep="", lineterminator="\n")


def _bar_label(row: MetricComparison, checkpoint: str, with_task: bool) -> str:
    cell = row.cells[checkpoint]
    mark = " no CI" if math.isnan(cell.ci_low) else (" *" if cell.significant else "")
    return f"{f'{row.task}/' if with_task else ''}{row.metric} ({checkpoint}){mark}"


def comparison_chart(rows: Sequence[MetricComparison], image_format: str = "png", *, with_task: bool = True) -> bytes:
    """Horizontal bars of deltas with CI error bars and a zero line; significant bars coloured by direction and
    starred. ``image_format``: ``png`` (``comparison.png``) or ``svg`` (the HTML report, sharp at any zoom);
    ``with_task=False`` leaves the task out of the bar labels (a chart of one task)."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg without touching pyplot's global backend
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    bars = [(row, checkpoint) for row in rows for checkpoint in row.cells]
    figure = Figure(figsize=(10.0, max(2.5, 0.35 * len(bars) + 1.5)))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if not bars:
        axes.text(0.5, 0.5, "Nothing to compare", ha="center", va="center")
        axes.set_axis_off()
    else:
        colours = {"significantly better": "#2a9d8f", "significantly worse": "#e76f51", "not significant": "#adb5bd"}
        positions = list(range(len(bars)))[::-1]  # first row on top
        extent = 0.0
        for y, (row, checkpoint) in zip(positions, bars):
            cell = row.cells[checkpoint]
            verdict = (
                "not significant"
                if not cell.significant
                else ("significantly better" if row.is_better(checkpoint) else "significantly worse")
            )
            low, high, delta = cell.ci_low, cell.ci_high, cell.delta
            error = None if math.isnan(low) else [[max(0.0, delta - low)], [max(0.0, high - delta)]]
            unlike = "not like for like" in cell.note
            axes.barh(
                y, delta, xerr=error, color=colours[verdict], capsize=3, height=0.6, hatch="//" if unlike else None
            )
            axes.plot([delta], [y], marker="o", color="black", markersize=3)  # visible even when delta is 0
            extent = max([extent, *(abs(v) for v in (delta, low, high) if math.isfinite(v))])
        extent = 1.1 * extent or 1.0
        axes.set_xlim(-extent, extent)  # symmetric, so the zero line sits in the middle
        axes.set_yticks(positions)
        axes.set_yticklabels([_bar_label(row, c, with_task) for row, c in bars], fontsize=8)
        axes.axvline(0.0, color="black", linewidth=0.8)
        axes.set_xlabel(f"delta vs baseline {rows[0].baseline!r} ({rows[0].confidence:.0%} paired bootstrap CI)")
        handles = [Patch(color=c, label=label) for label, c in colours.items()]
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="not like for like"))
        axes.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # never over a bar
    figure.tight_layout()
    buffer = io.BytesIO()
    metadata = {"Date": None} if image_format == "svg" else None  # same rows, same bytes
    # SVG text stays text (a tenth of the size of glyph outlines, and selectable); the salt makes ids reproducible
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "coca-bench"}):
        figure.savefig(buffer, format=image_format, dpi=120, metadata=metadata)
    return buffer.getvalue()


def write_comparison(rows: Sequence[MetricComparison], output_dir: Path) -> dict[str, Path]:
    """``comparison.csv`` (one line per metric and checkpoint), ``comparison.md`` and ``comparison.png``."""
    output_dir = Path(output_dir)
    paths = {"csv": output_dir / COMPARISON_CSV, "md": output_dir / COMPARISON_MD, "png": output_dir / COMPARISON_PNG}
    atomic_write_text(paths["csv"], comparison_csv(rows))
    atomic_write_text(paths["md"], _comparison_markdown(rows))
    atomic_write_bytes(paths["png"], comparison_chart(rows))
    return paths


__all__ = [
    "COMPARISON_COLUMNS",
    "COMPARISON_CSV",
    "COMPARISON_MD",
    "COMPARISON_PNG",
    "comparison_chart",
    "comparison_csv",
    "comparison_frame",
    "format_comparison",
    "write_comparison",
]
