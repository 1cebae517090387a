"""Comparison tables and chart: console text, ``comparison.md``, ``comparison.csv`` and ``comparison.png``."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

from coca_bench.compare.matching import ComparisonCell, MetricComparison
from coca_bench.fileio import atomic_write_bytes, atomic_write_text
from coca_bench.results import render_csv, render_markdown_table, render_text_table

COMPARISON_CSV = "comparison.csv"
COMPARISON_MD = "comparison.md"
COMPARISON_PNG = "comparison.png"


def _checkpoint_columns(rows: Sequence[MetricComparison]) -> list[str]:
    baselines = list(dict.fromkeys(row.baseline for row in rows))
    others = sorted({c for row in rows for c in row.cells} - set(baselines))
    return baselines + others


def _cell_text(cell: ComparisonCell) -> str:
    if math.isnan(cell.ci_low):
        return f"{cell.value:.4f} {cell.delta:+.4f} (no CI)"
    star = " *" if cell.significant else ""
    return f"{cell.value:.4f} {cell.delta:+.4f} [{cell.ci_low:+.4f}, {cell.ci_high:+.4f}]{star}"


def _cell_note(cell: ComparisonCell) -> str:
    if cell.on_subset:
        return f"{cell.note} (baseline there: {cell.baseline_value:.4f})"
    return cell.note


def _comparison_table(rows: Sequence[MetricComparison]) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, body and numbered footnotes (notes are shared by the cells that cite them)."""
    columns = _checkpoint_columns(rows)
    footnotes: list[str] = []
    body = []
    for row in rows:
        cells = [f"{row.task}/{row.metric} {'↑' if row.higher_is_better else '↓'}"]
        for checkpoint in columns:
            if checkpoint == row.baseline:
                cells.append(f"{row.baseline_value:.4f}")
                continue
            cell = row.cells.get(checkpoint)
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
    baselines = {r.baseline for r in rows}
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


def _comparison_csv(rows: Sequence[MetricComparison]) -> str:
    header = [
        "task", "metric", "higher_is_better", "baseline", "checkpoint", "baseline_value", "value",
        "delta", "ci_low", "ci_high", "significant", "n_paired", "n_total", "note",
    ]  # fmt: skip

    def number(value: float) -> str:
        return "" if math.isnan(value) else repr(float(value))

    lines = [
        [
            row.task,
            row.metric,
            row.higher_is_better,
            row.baseline,
            checkpoint,
            number(cell.baseline_value),
            number(cell.value),
            number(cell.delta),
            number(cell.ci_low),
            number(cell.ci_high),
            cell.significant,
            "" if cell.n_paired is None else cell.n_paired,
            "" if cell.n_total is None else cell.n_total,
            cell.note,
        ]  # fmt: skip
        for row in rows
        for checkpoint, cell in row.cells.items()
    ]
    return render_csv(header, lines)


def _comparison_png(rows: Sequence[MetricComparison]) -> bytes:
    """Horizontal bars of deltas with CI error bars and a zero line; significant bars coloured by direction."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg without touching pyplot's global backend
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    bars = [(row, checkpoint) for row in rows for checkpoint in row.cells]
    figure = Figure(figsize=(8.0, max(2.5, 0.35 * len(bars) + 1.5)))
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
        axes.set_yticklabels(
            [f"{row.task}/{row.metric} ({c}){' no CI' if math.isnan(row.cells[c].ci_low) else ''}" for row, c in bars],
            fontsize=8,
        )
        axes.axvline(0.0, color="black", linewidth=0.8)
        axes.set_xlabel(f"delta vs baseline {rows[0].baseline!r} ({rows[0].confidence:.0%} paired bootstrap CI)")
        handles = [Patch(color=c, label=label) for label, c in colours.items()]
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="not like for like"))
        axes.legend(handles=handles, fontsize=8, loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()


def write_comparison(rows: Sequence[MetricComparison], output_dir: Path) -> dict[str, Path]:
    """``comparison.csv`` (one line per metric and checkpoint), ``comparison.md`` and ``comparison.png``."""
    output_dir = Path(output_dir)
    paths = {"csv": output_dir / COMPARISON_CSV, "md": output_dir / COMPARISON_MD, "png": output_dir / COMPARISON_PNG}
    atomic_write_text(paths["csv"], _comparison_csv(rows))
    atomic_write_text(paths["md"], _comparison_markdown(rows))
    atomic_write_bytes(paths["png"], _comparison_png(rows))
    return paths


__all__ = ["COMPARISON_CSV", "COMPARISON_MD", "COMPARISON_PNG", "format_comparison", "write_comparison"]
