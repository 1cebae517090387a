"""Checkpoint comparison: paired bootstrap confidence intervals over per-sample records.

Two checkpoints evaluated on the same samples are compared *paired*: each
bootstrap resample draws the same sample ids for both, so the interval reflects
the difference between the models, not the spread of the data set (an unpaired
test on paired data is far too wide; see lm-eval-harness #3831). Metrics that are
not per-sample means (mean-per-class recall, CIDEr) are recomputed on every
resample through the task's own aggregate.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from coca_bench.registry import TaskSpec
from coca_bench.results import (
    atomic_write_bytes,
    atomic_write_text,
    canonical_json,
    collect_records,
    comparability_differences,
    load_samples,
    render_markdown_table,
    render_text_table,
)

Recompute = Callable[[list[dict]], dict[str, float]]
Interval = tuple[float, float, float]  # (delta = b - a on the full paired set, ci low, ci high)

COMPARISON_CSV = "comparison.csv"
COMPARISON_MD = "comparison.md"
COMPARISON_PNG = "comparison.png"
# Resample chunks are sized so that one chunk's index/count arrays stay around 32 MB each.
_MAX_CHUNK_ELEMENTS = 4_000_000
# A stored metric and the mean of its per-sample field must agree this closely for the fast path to be valid.
_MEAN_TOLERANCE = 1e-6


@dataclass
class MetricComparison:
    """One (task, metric) row: every checkpoint's value and its paired delta against the baseline."""

    task: str
    metric: str
    higher_is_better: bool
    values: dict[str, float]
    deltas: dict[str, Interval]
    significant: dict[str, bool]
    baseline: str = ""
    n_paired: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    confidence: float = 0.95

    def is_better(self, checkpoint: str) -> bool:
        """Significantly better than the baseline, taking the metric's direction into account."""
        delta = self.deltas[checkpoint][0]
        return self.significant.get(checkpoint, False) and ((delta > 0) == self.higher_is_better)


def ci_excludes_zero(low: float, high: float) -> bool:
    """The significance rule: the interval lies wholly above or below 0 (NaN bounds: not significant)."""
    return bool(low > 0 or high < 0)


# --------------------------------------------------------------------------- pairing


def _id_key(sample: Mapping[str, Any], side: str) -> str:
    if "id" not in sample:
        raise ValueError(f"A per-sample record of {side} has no 'id' field, so it cannot be paired: {dict(sample)!r:.200}.")
    return canonical_json(sample["id"])  # ids may be ints, strings or lists; 1 and "1" stay distinct


def _index_by_id(samples: Sequence[Mapping[str, Any]], side: str) -> dict[str, Mapping[str, Any]]:
    index: dict[str, Mapping[str, Any]] = {}
    for sample in samples:
        key = _id_key(sample, side)
        if key in index:
            raise ValueError(f"Sample id {key} appears twice in {side}; per-sample ids must be unique to pair runs.")
        index[key] = sample
    return index


def pair_by_id(
    samples_a: Sequence[Mapping[str, Any]], samples_b: Sequence[Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """The records of ids present in both runs, aligned, in a fixed order (sorted ids) independent of file order."""
    index_a, index_b = _index_by_id(samples_a, "run a"), _index_by_id(samples_b, "run b")
    common = sorted(set(index_a) & set(index_b))
    if not common:
        raise ValueError(
            f"The two runs share no sample ids ({len(index_a)} and {len(index_b)} samples); "
            "they were not evaluated on the same data, so they cannot be compared pairwise."
        )
    return [index_a[k] for k in common], [index_b[k] for k in common]


# --------------------------------------------------------------------------- bootstrap


def _resample_chunks(n: int, n_resamples: int, seed: int, width: int = 1) -> Iterator[np.ndarray]:
    """Bootstrap index rows ``(chunk, n)``; one generator for both code paths, so they draw the same resamples."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, _MAX_CHUNK_ELEMENTS // max(1, n * width)))
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        yield rng.integers(0, n, size=(size, n))
        done += size


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))  # bool included: a 0/1 hit is a score


def _mean_fields(pairs_a: Sequence[Mapping[str, Any]], pairs_b: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per-sample fields that look like metrics: numeric (or null) in every record, present on both sides.

    ``id`` and ``*_id`` fields are identifiers, not scores. Pass ``metrics=`` to be explicit.
    """
    names: list[str] = []
    for side in (pairs_a, pairs_b):
        for record in side:
            names.extend(k for k in record if k not in names)
    present_a = {k for r in pairs_a for k in r}
    present_b = {k for r in pairs_b for k in r}
    return [
        name
        for name in names
        if name != "id"
        and not name.endswith("_id")
        and name in present_a
        and name in present_b
        and all(r.get(name) is None or _is_number(r.get(name)) for r in (*pairs_a, *pairs_b))
    ]


def _field_matrix(records: Sequence[Mapping[str, Any]], names: Sequence[str]) -> np.ndarray:
    """``(n, m)`` floats; a missing or null field is NaN and is left out of that metric's mean."""
    matrix = np.full((len(records), len(names)), np.nan)
    for row, record in enumerate(records):
        for column, name in enumerate(names):
            value = record.get(name)
            if value is not None:
                matrix[row, column] = float(value)
    return matrix


def _nan_mean(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _percentile_interval(delta: float, stats: np.ndarray, confidence: float) -> Interval:
    finite = stats[np.isfinite(stats)]
    if not math.isfinite(delta) or finite.size == 0:
        return (float(delta), math.nan, math.nan)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return (float(delta), float(low), float(high))


def _bootstrap_means(
    pairs_a: Sequence[Mapping[str, Any]],
    pairs_b: Sequence[Mapping[str, Any]],
    names: Sequence[str],
    n_resamples: int,
    seed: int,
    confidence: float,
) -> dict[str, Interval]:
    """Vectorised path: a resample's mean is (counts @ values) / (counts @ present), counts from bincount."""
    n = len(pairs_a)
    values_a, values_b = _field_matrix(pairs_a, names), _field_matrix(pairs_b, names)
    present_a, present_b = np.isfinite(values_a), np.isfinite(values_b)
    filled_a, filled_b = np.where(present_a, values_a, 0.0), np.where(present_b, values_b, 0.0)
    full = _nan_mean(filled_b.sum(0), present_b.sum(0)) - _nan_mean(filled_a.sum(0), present_a.sum(0))
    stats = []
    for indices in _resample_chunks(n, n_resamples, seed):
        rows = indices.shape[0]
        offsets = (np.arange(rows) * n)[:, None]
        counts = np.bincount((indices + offsets).ravel(), minlength=rows * n).reshape(rows, n).astype(float)
        mean_a = _nan_mean(counts @ filled_a, counts @ present_a)
        mean_b = _nan_mean(counts @ filled_b, counts @ present_b)
        stats.append(mean_b - mean_a)
    stacked = np.concatenate(stats, axis=0)
    return {name: _percentile_interval(full[j], stacked[:, j], confidence) for j, name in enumerate(names)}


def _bootstrap_recompute(
    pairs_a: Sequence[Mapping[str, Any]],
    pairs_b: Sequence[Mapping[str, Any]],
    recompute: Recompute,
    n_resamples: int,
    seed: int,
    confidence: float,
) -> dict[str, Interval]:
    """General path: the task's own aggregate on each resample (slower; needed for non-mean metrics)."""
    full_a, full_b = recompute(list(pairs_a)), recompute(list(pairs_b))
    names = [name for name in full_b if name in full_a]
    full = {name: float(full_b[name]) - float(full_a[name]) for name in names}
    stats: dict[str, list[float]] = {name: [] for name in names}
    for indices in _resample_chunks(len(pairs_a), n_resamples, seed):
        for row in indices:
            metrics_a = recompute([pairs_a[i] for i in row])
            metrics_b = recompute([pairs_b[i] for i in row])
            for name in names:
                a, b = metrics_a.get(name), metrics_b.get(name)
                stats[name].append(math.nan if a is None or b is None else float(b) - float(a))
    return {name: _percentile_interval(full[name], np.asarray(stats[name]), confidence) for name in names}


def _check_bootstrap_settings(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1 (e.g. 0.95), got {confidence}.")


def paired_bootstrap(
    samples_a: list[dict],
    samples_b: list[dict],
    recompute: Recompute | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    *,
    metrics: Sequence[str] | None = None,
) -> dict[str, tuple[float, float, float]]:
    """metric -> (delta = b - a on the paired set, low, high): a percentile interval from paired resamples.

    Records are paired by ``id`` (ids in both runs only; none in common is an
    error). ``recompute=None`` averages per-sample fields: ``metrics`` when given,
    else every numeric field except ids. A difference is significant when the
    interval excludes 0 (:func:`ci_excludes_zero`).
    """
    _check_bootstrap_settings(n_resamples, confidence)
    pairs_a, pairs_b = pair_by_id(samples_a, samples_b)
    if recompute is not None:
        return _bootstrap_recompute(pairs_a, pairs_b, recompute, n_resamples, seed, confidence)
    names = list(metrics) if metrics is not None else _mean_fields(pairs_a, pairs_b)
    if not names:
        return {}
    return _bootstrap_means(pairs_a, pairs_b, names, n_resamples, seed, confidence)


def recompute_from_specs(
    specs: Mapping[str, TaskSpec], params_by_task: Mapping[str, Mapping[str, Any]] | None = None
) -> Callable[[str], Recompute | None]:
    """``recompute_for`` for :func:`compare_runs` from registered tasks: their aggregate where they have one.

    Tasks without an aggregate return ``None``, i.e. the vectorised per-sample mean.
    ``params_by_task`` overrides a task's default parameters (as stored in its results).
    """

    def recompute_for(task_name: str) -> Recompute | None:
        spec = specs.get(task_name)
        if spec is None or spec.aggregate is None:
            return None
        params = {**spec.params, **dict((params_by_task or {}).get(task_name, {}))}
        return lambda samples: spec.recompute(samples, params)

    return recompute_for


# --------------------------------------------------------------------------- comparing stored runs


def _plain_mean_metrics(record: Mapping[str, Any], samples: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """Metrics whose per-sample field averages to the stored value (safe for the fast path), and the others."""
    usable, unusable = [], []
    for name, stored in record["metrics"].items():
        values = [float(s[name]) for s in samples if _is_number(s.get(name))]
        if not values or not math.isfinite(stored):
            unusable.append(name)
            continue
        mean = sum(values) / len(values)
        (usable if abs(mean - stored) <= _MEAN_TOLERANCE * max(1.0, abs(stored)) else unusable).append(name)
    return usable, unusable


@dataclass
class _PairOutcome:
    intervals: dict[str, Interval]
    n_paired: int | None
    notes: list[str]
    metric_notes: dict[str, str]


def _compare_pair(
    base_record: Mapping[str, Any],
    base_samples: list[dict],
    other_record: Mapping[str, Any],
    other_samples: list[dict],
    recompute: Recompute | None,
    n_resamples: int,
    seed: int,
    confidence: float,
) -> _PairOutcome:
    notes: list[str] = []
    metric_notes: dict[str, str] = {}
    differences = comparability_differences(base_record, other_record)
    if differences:
        notes.append(f"not like for like: differs in {', '.join(differences)}")
    if not base_samples or not other_samples:
        notes.append("no per-sample records, so no CI")
        return _PairOutcome({}, None, notes, metric_notes)
    try:
        pairs_a, pairs_b = pair_by_id(base_samples, other_samples)
    except ValueError as exc:
        notes.append(f"no CI: {exc}")
        return _PairOutcome({}, None, notes, metric_notes)
    total = max(len(base_samples), len(other_samples))
    if len(pairs_a) < total:
        notes.append(f"paired on {len(pairs_a)} of {total} samples")
    if recompute is not None:
        try:
            intervals = _bootstrap_recompute(pairs_a, pairs_b, recompute, n_resamples, seed, confidence)
        except Exception as exc:  # a task aggregate that fails on a resample must not sink the whole comparison
            notes.append(f"no CI: the task's recompute failed ({type(exc).__name__}: {exc})")
            intervals = {}
    else:
        usable_a, unusable_a = _plain_mean_metrics(base_record, base_samples)
        usable_b, _ = _plain_mean_metrics(other_record, other_samples)
        names = [name for name in usable_a if name in usable_b]
        intervals = _bootstrap_means(pairs_a, pairs_b, names, n_resamples, seed, confidence) if names else {}
        for name in unusable_a:
            metric_notes[name] = "not a per-sample mean; no CI without the task's recompute"
    for name in base_record["metrics"]:
        if name not in intervals and name not in metric_notes:
            metric_notes[name] = "not recomputable from per-sample records; no CI"
    return _PairOutcome(intervals, len(pairs_a), notes, metric_notes)


def compare_runs(
    output_dir: Path,
    baseline: str | None = None,
    recompute_for: Callable[[str], Recompute | None] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    *,
    confidence: float = 0.95,
) -> list[MetricComparison]:
    """Every (task, metric) stored for the baseline and at least one other checkpoint, with paired CIs.

    The baseline defaults to the first checkpoint name in sorted order. Runs
    without per-sample records get values and point deltas but no CI; runs whose
    settings differ beyond the checkpoint carry a "not like for like" note.
    """
    _check_bootstrap_settings(n_resamples, confidence)
    records = collect_records(output_dir)
    by_task: dict[str, dict[str, dict]] = {}
    for record in records:
        by_task.setdefault(record["task"]["name"], {})[record["checkpoint"]["name"]] = record
    checkpoints = sorted({record["checkpoint"]["name"] for record in records})
    if not checkpoints:
        return []
    baseline = baseline or checkpoints[0]
    if baseline not in checkpoints:
        raise ValueError(f"--baseline {baseline!r} has no results in {output_dir}; checkpoints there: {checkpoints}.")

    comparisons: list[MetricComparison] = []
    for task in sorted(by_task):
        runs = by_task[task]
        if baseline not in runs or len(runs) < 2:
            continue
        base = runs[baseline]
        base_samples = load_samples(output_dir, baseline, task)
        recompute = recompute_for(task) if recompute_for is not None else None
        outcomes = {
            other: _compare_pair(
                base,
                base_samples,
                runs[other],
                load_samples(output_dir, other, task),
                recompute,
                n_resamples,
                seed,
                confidence,
            )
            for other in sorted(runs)
            if other != baseline
        }
        for metric, base_value in base["metrics"].items():
            others = [o for o in outcomes if metric in runs[o]["metrics"]]
            if not others:
                continue
            row = MetricComparison(
                task=task,
                metric=metric,
                higher_is_better=bool(base.get("higher_is_better", {}).get(metric, True)),
                values={baseline: base_value, **{o: runs[o]["metrics"][metric] for o in others}},
                deltas={},
                significant={},
                baseline=baseline,
                confidence=confidence,
            )
            for other in others:
                outcome = outcomes[other]
                interval = outcome.intervals.get(metric)
                if interval is None:
                    interval = (runs[other]["metrics"][metric] - base_value, math.nan, math.nan)
                row.deltas[other] = interval
                row.significant[other] = ci_excludes_zero(interval[1], interval[2])
                if outcome.n_paired is not None:
                    row.n_paired[other] = outcome.n_paired
                notes = outcome.notes + ([outcome.metric_notes[metric]] if metric in outcome.metric_notes else [])
                if notes:
                    row.notes[other] = "; ".join(notes)
            comparisons.append(row)
    return comparisons


# --------------------------------------------------------------------------- output


def _checkpoint_columns(rows: Sequence[MetricComparison]) -> list[str]:
    baselines = list(dict.fromkeys(row.baseline for row in rows))
    others = sorted({c for row in rows for c in row.values} - set(baselines))
    return baselines + others


def _delta_cell(row: MetricComparison, checkpoint: str) -> str:
    value = row.values.get(checkpoint)
    if value is None:
        return ""
    if checkpoint == row.baseline:
        return f"{value:.4f}"
    delta, low, high = row.deltas[checkpoint]
    if math.isnan(low):
        return f"{value:.4f} {delta:+.4f} (no CI)"
    return f"{value:.4f} {delta:+.4f} [{low:+.4f}, {high:+.4f}]{' *' if row.significant[checkpoint] else ''}"


def _comparison_table(rows: Sequence[MetricComparison]) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, body and numbered footnotes (notes are shared by the cells that cite them)."""
    columns = _checkpoint_columns(rows)
    footnotes: list[str] = []
    body = []
    for row in rows:
        cells = [f"{row.task}/{row.metric} {'↑' if row.higher_is_better else '↓'}"]
        for checkpoint in columns:
            cell = _delta_cell(row, checkpoint)
            note = row.notes.get(checkpoint)
            if note:
                if note not in footnotes:
                    footnotes.append(note)
                cell += f" [{footnotes.index(note) + 1}]"
            cells.append(cell)
        body.append(cells)
    header = ["task/metric", *(f"{c} (baseline)" if c in {r.baseline for r in rows} else c for c in columns)]
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
        "delta", "ci_low", "ci_high", "significant", "n_paired", "note",
    ]  # fmt: skip

    def number(value: float) -> str:
        return "" if math.isnan(value) else repr(float(value))

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        for checkpoint, (delta, low, high) in row.deltas.items():
            writer.writerow(
                [
                    row.task, row.metric, row.higher_is_better, row.baseline, checkpoint,
                    number(row.values[row.baseline]), number(row.values[checkpoint]),
                    number(delta), number(low), number(high), row.significant[checkpoint],
                    row.n_paired.get(checkpoint, ""), row.notes.get(checkpoint, ""),
                ]
            )  # fmt: skip
    return buffer.getvalue()


def _comparison_png(rows: Sequence[MetricComparison]) -> bytes:
    """Horizontal bars of deltas with CI error bars and a zero line; significant bars coloured by direction."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg without touching pyplot's global backend
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    bars = [(row, checkpoint) for row in rows for checkpoint in row.deltas]
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
            delta, low, high = row.deltas[checkpoint]
            verdict = (
                "not significant"
                if not row.significant[checkpoint]
                else ("significantly better" if row.is_better(checkpoint) else "significantly worse")
            )
            error = None if math.isnan(low) else [[max(0.0, delta - low)], [max(0.0, high - delta)]]
            unlike = "not like for like" in row.notes.get(checkpoint, "")
            axes.barh(y, delta, xerr=error, color=colours[verdict], capsize=3, height=0.6, hatch="//" if unlike else None)
            axes.plot([delta], [y], marker="o", color="black", markersize=3)  # visible even when delta is 0
            extent = max([extent, *(abs(v) for v in (delta, low, high) if math.isfinite(v))])
        extent = 1.1 * extent or 1.0
        axes.set_xlim(-extent, extent)  # symmetric, so the zero line sits in the middle
        axes.set_yticks(positions)
        axes.set_yticklabels(
            [
                f"{row.task}/{row.metric} ({checkpoint}){' no CI' if math.isnan(row.deltas[checkpoint][1]) else ''}"
                for row, checkpoint in bars
            ],
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


__all__ = [
    "MetricComparison",
    "ci_excludes_zero",
    "compare_runs",
    "format_comparison",
    "pair_by_id",
    "paired_bootstrap",
    "recompute_from_specs",
    "write_comparison",
]
