"""Comparison tables and chart: console text, ``comparison.md``, ``comparison.csv`` and ``comparison.png``.

The tables are rendered from :func:`comparison_frame` (one row per cell), the same frame the HTML report reads.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coca_bench.compare.matching import MetricComparison
from coca_bench.fileio import atomic_write_bytes, atomic_write_text
from coca_bench.results import render_markdown_table, render_text_table, task_order

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COMPARISON_CSV = "comparison.csv"
COMPARISON_MD = "comparison.md"
COMPARISON_PNG = "comparison.png"


def _checkpoint_columns(rows: Sequence[MetricComparison]) -> list[str]:
    baselines = list(dict.fromkeys(row.baseline for row in rows))
    others = sorted({c for row in rows for c in row.cells} - set(baselines))
    return baselines + others


def _undefined(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def defined_rows(rows: Sequence[MetricComparison]) -> list[MetricComparison]:
    """The rows with a value for at least one checkpoint: a metric undefined for every checkpoint of its task (acc5
    with 3 classes) is nothing to compare, so the tables and the chart leave it out instead of showing ``nan``."""
    return [
        row
        for row in rows
        if not (_undefined(row.baseline_value) and all(_undefined(c.value) for c in row.cells.values()))
    ]


def undefined_metrics(rows: Sequence[MetricComparison]) -> list[str]:
    """``task/metric`` of the rows :func:`defined_rows` leaves out, for the line that says so."""
    kept = {id(row) for row in defined_rows(rows)}
    return [f"{row.task}/{row.metric}" for row in rows if id(row) not in kept]


def order_rows(rows: Sequence[MetricComparison], groups: Mapping[str, Sequence[str]]) -> list[MetricComparison]:
    """Rows by task in :func:`~coca_bench.results.task_order` (``groups``: task -> its groups, as ``--tasks list``
    shows them), each task's metrics in their declared order (headline first); tasks without groups last, by name."""
    tasks = set(row.task for row in rows)
    known = task_order({task: groups[task] for task in groups if task in tasks})  # ties: in ``groups``' order
    ranked = {task: i for i, task in enumerate(known + sorted(t for t in tasks if t not in groups))}
    return sorted(rows, key=lambda row: ranked[row.task])  # stable: declared metric order within a task


COMPARISON_COLUMNS: tuple[str, ...] = (
    "task", "metric", "higher_is_better", "baseline", "checkpoint", "baseline_value", "value",
    "delta", "ci_low", "ci_high", "significant", "n_paired", "n_total", "note",
)  # fmt: skip
"""The columns of ``comparison.csv``: one line per (task, metric, checkpoint) cell."""


def comparison_frame(rows: Sequence[MetricComparison]) -> pd.DataFrame:
    """One row per (task, metric, checkpoint) cell, in :data:`COMPARISON_COLUMNS`, plus ``baseline_run_value`` (the
    baseline's own value on all its samples, the row's baseline column), ``significantly_better`` (significant in
    the metric's good direction) and ``confidence``. NaN bounds: no interval (the note says why). Metrics undefined
    for every checkpoint are left out (:func:`defined_rows`)."""
    import pandas as pd

    rows = defined_rows(rows)

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
    undefined = undefined_metrics(rows)
    left_out = f"\n\nLeft out, undefined for every checkpoint: {', '.join(undefined)}." if undefined else ""
    return (
        f"Cells: value, delta vs baseline [{confidence:.0%} paired bootstrap CI]; "
        f"* = CI excludes 0 (significant); ↑/↓ = higher/lower is better.{left_out}"
    )


def format_comparison(rows: Sequence[MetricComparison]) -> str:
    """Console table: rows per task/metric, columns per checkpoint, ``value delta [lo, hi] *``."""
    if not defined_rows(rows):
        return "Nothing to compare: no task has results for the baseline and another checkpoint."
    header, body, footnotes = _comparison_table(rows)
    lines = [render_text_table(header, body, align="l" * len(header)), "", _legend(rows)]
    lines += [f"[{i}] {note}" for i, note in enumerate(footnotes, start=1)]
    return "\n".join(lines)


def _comparison_markdown(rows: Sequence[MetricComparison]) -> str:
    if not defined_rows(rows):
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


# Okabe-Ito: told apart with every common colour-vision deficiency. One colour per compared checkpoint, by its place in
# the table's column order, so that a checkpoint keeps its colour in every panel, in comparison.png and in the report.
CHECKPOINT_COLOURS: tuple[str, ...] = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
)  # fmt: skip
UNIT_SCALE = 2.0
"""A metric whose values all lie within ±UNIT_SCALE (recalls, accuracies, BLEU, CIDEr) is drawn apart from the others
(ranks), so that a recall delta of 0.05 is not flattened by a rank delta of 20 on the same axis."""

_SLOT, _TITLE, _TICKS, _XLABEL, _PANEL_GAP, _BLOCK_GAP = 0.2, 0.34, 0.3, 0.18, 0.28, 0.1  # inches
_HEADER, _FOOTER, _COLUMN_WIDTH = 1.05, 0.5, 6.2  # inches


def compared_checkpoints(rows: Sequence[MetricComparison]) -> list[str]:
    """The checkpoints compared against the baseline, in the table's column order: the chart's colour order."""
    baselines = set(row.baseline for row in rows)
    return [c for c in _checkpoint_columns(rows) if c not in baselines]


def checkpoint_colours(checkpoints: Sequence[str]) -> dict[str, str]:
    """A colour per checkpoint, by its place in ``checkpoints`` (see :data:`CHECKPOINT_COLOURS`)."""
    return {c: CHECKPOINT_COLOURS[i % len(CHECKPOINT_COLOURS)] for i, c in enumerate(checkpoints)}


def improvement(row: MetricComparison, value: float) -> float:
    """A delta (or CI bound) as an improvement: sign-flipped for a lower-is-better metric, so that right is better."""
    return value if row.higher_is_better else -value


@dataclass
class _Block:
    """One axes: some of a task's metrics, all on one scale; a task's first block carries the panel title."""

    task: str
    rows: list[MetricComparison]
    first: bool
    last: bool
    checkpoints: list[str]

    @property
    def slots(self) -> float:
        bars = sum(len([c for c in self.checkpoints if c in row.cells]) for row in self.rows)
        return bars + 0.5 * (len(self.rows) - 1) * (len(self.checkpoints) > 1)

    @property
    def height(self) -> float:
        return (
            self.slots * _SLOT + 0.12 + _TICKS + (_TITLE if self.first else _BLOCK_GAP) + (_XLABEL if self.last else 0)
        )


def _on_unit_scale(row: MetricComparison) -> bool:
    values = [row.baseline_value]
    values += [v for cell in row.cells.values() for v in (cell.value, cell.baseline_value, cell.ci_low, cell.ci_high)]
    return all(abs(v) <= UNIT_SCALE for v in values if v is not None and math.isfinite(v))


def _scale_groups(rows: Sequence[MetricComparison]) -> list[list[MetricComparison]]:
    """A task's metrics split into axes that share a scale: those of the headline's direction on the unit scale,
    those of it off the unit scale (CIDEr next to BLEU), and the other direction's (ranks next to recalls) kept
    together unless they all fit the unit scale too; the headline's group first, declared order within each."""
    head = rows[0].higher_is_better
    other = [row for row in rows if row.higher_is_better != head]
    unit = [row for row in rows if row.higher_is_better == head and _on_unit_scale(row)]
    large = [row for row in rows if row.higher_is_better == head and not _on_unit_scale(row)]
    if all(_on_unit_scale(row) for row in other):
        unit, other = [row for row in rows if row in unit or row in other], []
    groups = (unit, large) if rows[0] in unit else (large, unit)
    return [group for group in (*groups, other) if group]


def _panels(rows: Sequence[MetricComparison], checkpoints: Sequence[str]) -> list[list[_Block]]:
    """One panel per task, in row order, made of one block (axes) per :func:`_scale_groups` group."""
    panels = []
    for task in dict.fromkeys(row.task for row in rows):
        task_rows = [row for row in rows if row.task == task]
        groups = _scale_groups(task_rows)
        present = [c for c in checkpoints if any(c in row.cells for row in task_rows)]
        panels.append([_Block(task, g, i == 0, i == len(groups) - 1, present) for i, g in enumerate(groups)])
    return panels


def _columns(heights: Sequence[float], n_columns: int) -> list[int]:
    """Where each column starts: the contiguous split of the panels (in order) with the shortest tallest column."""
    from itertools import combinations

    n = len(heights)
    best: tuple[float, list[int]] = (math.inf, [0])
    for cuts in combinations(range(1, n), n_columns - 1):
        starts = [0, *cuts]
        bounds = [*starts, n]
        tallest = max(sum(heights[a:b]) for a, b in zip(bounds, bounds[1:]))
        if tallest < best[0]:
            best = (tallest, starts)
    return best[1]


def _draw_block(axes: Axes, block: _Block, colours: Mapping[str, str], width: float) -> None:
    """Bars of improvement with their CI whiskers; solid and starred where the CI excludes 0. ``width``: of the
    axes, in inches, to leave room for the longest value label beside its bar."""
    from matplotlib.ticker import MaxNLocator

    y, ticks, labels, extent, longest = 0.0, [], [], 0.0, 0
    for index, row in enumerate(block.rows):
        present = [c for c in block.checkpoints if c in row.cells]
        ticks.append(y + (len(present) - 1) / 2)
        headline = block.first and index == 0
        labels.append((f"{row.metric} ↑" if row.higher_is_better else f"{row.metric} ↓ flipped", headline))
        for checkpoint in present:
            cell, colour = row.cells[checkpoint], colours[checkpoint]
            gain = improvement(row, cell.delta) + 0.0 if cell.delta is not None else math.nan  # no "-0"
            has_ci = math.isfinite(cell.ci_low) and math.isfinite(cell.ci_high)
            low, high = sorted((improvement(row, cell.ci_low), improvement(row, cell.ci_high)))
            if math.isfinite(gain):
                unlike = "not like for like" in cell.note
                axes.barh(
                    y, gain, height=0.72, color=colour if cell.significant else "white", edgecolor=colour,
                    linewidth=1.3, hatch="////" if unlike else None, label=f"{row.metric} {checkpoint}", zorder=2,
                )  # fmt: skip
                axes.plot([gain], [y], marker="|", color="#212529", markersize=7, zorder=4)  # seen when gain is 0
                if has_ci:
                    axes.errorbar(
                        gain, y, xerr=[[max(0.0, gain - low)], [max(0.0, high - gain)]], fmt="none",
                        ecolor="#343a40", elinewidth=1.0, capsize=2.5, zorder=3,
                    )  # fmt: skip
                ends = [gain, *((low, high) if has_ci else ())]
                extent = max(extent, *(abs(v) for v in ends))
                right = gain >= 0
                anchor = max(0.0, *ends) if right else min(0.0, *ends)
                text = f"{gain:+.3g}" + (" *" if cell.significant else "" if has_ci else " (no CI)")
            else:
                anchor, right, text = 0.0, True, "undefined"
            longest = max(longest, len(text))
            axes.annotate(
                text, (anchor, y), xytext=(3 if right else -3, 0), textcoords="offset points", va="center",
                ha="left" if right else "right", fontsize=7, color="#212529" if cell.significant else "#6c757d",
                fontweight="bold" if cell.significant else "normal",
            )  # fmt: skip
            y += 1
        y += 0.5 * (len(block.checkpoints) > 1)
    room = min(0.45, (0.06 * longest + 0.08) / (width / 2))  # the share of a half-axis the longest label takes
    limit = (extent or 1.0) / (1.0 - room)
    axes.set_xlim(-limit, limit)
    axes.set_ylim(y - 0.5 - 0.5 * (len(block.checkpoints) > 1) + 0.1, -0.6)  # first metric on top
    axes.axvspan(0, limit, color="#2a9d8f", alpha=0.07, zorder=0, linewidth=0)  # the better side
    axes.axvspan(-limit, 0, color="#e76f51", alpha=0.05, zorder=0, linewidth=0)
    axes.axvline(0.0, color="#212529", linewidth=0.9, zorder=1)
    axes.set_yticks(ticks)
    axes.set_yticklabels([label for label, _ in labels], fontsize=8)
    for tick, (_, headline) in zip(axes.get_yticklabels(), labels):
        tick.set_fontweight("bold" if headline else "normal")
    axes.tick_params(axis="y", length=0)
    axes.tick_params(axis="x", labelsize=7, colors="#495057")
    axes.xaxis.set_major_locator(MaxNLocator(nbins=5, symmetric=True))
    axes.grid(axis="x", color="white", linewidth=0.8, zorder=1)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.spines["bottom"].set_color("#adb5bd")
    if block.first:
        axes.set_title(block.task, loc="left", fontsize=10, fontweight="bold", pad=6)
    if block.last:
        gap = "\u00a0" * 8  # no-break spaces: SVG text would collapse plain ones
        axes.set_xlabel(f"← worse{gap}improvement{gap}better →", fontsize=7, color="#6c757d", labelpad=2)


def comparison_figure(
    rows: Sequence[MetricComparison], *, checkpoints: Sequence[str] | None = None, title: bool = True
) -> Figure:
    """Small multiples: one panel per task, in row order (see :func:`order_rows`), each on its own scale (a task that
    mixes recalls and ranks gets a second axes in its panel for the ranks). Bars are improvements over the
    baseline: the delta, sign-flipped for lower-is-better metrics (labelled ``↓ flipped``), so that right is better
    in every panel; whiskers are the paired bootstrap CI; solid, bold and starred where the CI excludes 0, hollow
    where it does not, hatched where the runs are not like for like. The headline metric (declared first) is on top,
    in bold. ``checkpoints`` fixes the colour order (default :func:`compared_checkpoints`), so that charts of
    single tasks match the chart of all of them; ``title=False`` leaves out the figure's title and legend text
    above the panels, for a chart placed under a heading that says it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg without touching pyplot's global backend
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = defined_rows(rows)
    checkpoints = list(checkpoints) if checkpoints is not None else compared_checkpoints(rows)
    checkpoints += [c for c in compared_checkpoints(rows) if c not in checkpoints]
    colours = checkpoint_colours(checkpoints)
    if not rows:
        figure = Figure(figsize=(6.0, 1.5))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.text(0.5, 0.5, "Nothing to compare", ha="center", va="center")
        axes.set_axis_off()
        return figure

    panels = _panels(rows, checkpoints)
    heights = [sum(block.height for block in panel) + _PANEL_GAP for panel in panels]
    n_columns = 1 if len(panels) == 1 else min(len(panels), 3 if sum(heights) > 40 else 2)
    starts = _columns(heights, n_columns)
    bounds = [*starts, len(panels)]
    body = max(sum(heights[a:b]) for a, b in zip(bounds, bounds[1:])) - _PANEL_GAP  # no gap under the last
    labels = [f"{row.metric} ↑" if row.higher_is_better else f"{row.metric} ↓ flipped" for row in rows]
    label_width = 0.25 + 0.066 * max(len(label) for label in labels)  # 8 pt labels (bold: the headline), with room
    header, footer = (_HEADER, _FOOTER) if title else (0.3, 0.05)
    width, height = max(n_columns * _COLUMN_WIDTH, 7.5), header + body + footer
    margin = (width - n_columns * _COLUMN_WIDTH) / 2  # a lone column sits in the middle
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    for column, (a, b) in enumerate(zip(bounds, bounds[1:])):
        top = height - header
        for panel in panels[a:b]:
            for block in panel:
                top -= _TITLE if block.first else _BLOCK_GAP
                box = block.slots * _SLOT + 0.12
                left = margin + column * _COLUMN_WIDTH + label_width
                inches = _COLUMN_WIDTH - label_width - 0.45
                rect = (left / width, (top - box) / height, inches / width, box / height)
                _draw_block(figure.add_axes(rect), block, colours, inches)
                top -= box + _TICKS + (_XLABEL if block.last else 0)
            top -= _PANEL_GAP
    baseline, confidence = rows[0].baseline, rows[0].confidence
    handles = [Patch(facecolor=colours[c], edgecolor=colours[c], label=c) for c in checkpoints if c in colours]
    handles += [
        Patch(facecolor="#495057", edgecolor="#495057", label="significant (CI excludes 0) *"),
        Patch(facecolor="white", edgecolor="#495057", label="not significant"),
        Patch(facecolor="white", edgecolor="#495057", hatch="////", label="not like for like"),
    ]
    legend_top = 1 - (0.55 if title else 0.05) / height
    figure.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, legend_top), ncol=min(len(handles), 7),
        fontsize=8, frameon=False, handlelength=1.6, columnspacing=1.4,
    )  # fmt: skip
    if title:  # a chart under a heading that says all this leaves it out
        figure.text(
            0.5, 1 - 0.22 / height, f"Improvement over the baseline {baseline!r}, one panel per task",
            ha="center", va="center", fontsize=12, fontweight="bold",
        )  # fmt: skip
        figure.text(
            0.5, 0.25 / height,
            f"Bars: the delta against {baseline!r}, sign-flipped for ↓ (lower is better) metrics so that right is "
            f"always better; each panel on its own scale.\nWhiskers: {confidence:.0%} paired bootstrap CI. The "
            "headline metric (declared first) is in bold, on top.",
            ha="center", va="center", fontsize=7.5, color="#495057", linespacing=1.5,
        )  # fmt: skip
    return figure


def comparison_chart(
    rows: Sequence[MetricComparison],
    image_format: str = "png",
    *,
    checkpoints: Sequence[str] | None = None,
    title: bool = True,
) -> bytes:
    """:func:`comparison_figure` as ``png`` (``comparison.png``) or ``svg`` (the HTML report, sharp at any zoom)."""
    from matplotlib import rc_context

    figure = comparison_figure(rows, checkpoints=checkpoints, title=title)
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
    "CHECKPOINT_COLOURS",
    "COMPARISON_COLUMNS",
    "COMPARISON_CSV",
    "COMPARISON_MD",
    "COMPARISON_PNG",
    "checkpoint_colours",
    "compared_checkpoints",
    "comparison_chart",
    "comparison_csv",
    "comparison_figure",
    "comparison_frame",
    "defined_rows",
    "format_comparison",
    "improvement",
    "order_rows",
    "undefined_metrics",
    "write_comparison",
]
