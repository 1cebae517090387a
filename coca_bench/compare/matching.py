"""Matching stored runs for comparison: which records pair up, which metrics they declare, on which samples.

Every cell of a comparison is computed on one sample set: when two runs scored different samples (skips), the
value, the baseline's value, the delta and the interval are all taken on the samples both runs scored, and the cell
says so. Which fields are metrics, and how each aggregates, comes only from the declarations (the registered task,
else the declarations stored in the record).

A pair whose records differ in more than the weights is still compared, with a "not like for like" note naming what
differs: the settings and parameters (:func:`~coca_bench.results.comparability_differences`), and the suite code and
library versions (:func:`~coca_bench.results.provenance_differences`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coca_bench.compare.bootstrap import (
    Recompute,
    check_bootstrap_settings,
    ci_excludes_zero,
    pair_by_id,
    paired_bootstrap,
)
from coca_bench.metrics.resampling import resampler_of
from coca_bench.registry import MetricSpec, TaskSpec, aggregate_metrics
from coca_bench.results import ResultStore, comparability_differences, declared_metrics, provenance_differences


@dataclass
class ComparisonCell:
    """One checkpoint against the baseline on one metric, everything on the same ``n_paired`` samples."""

    value: float
    baseline_value: float
    delta: float
    ci_low: float
    ci_high: float
    n_paired: int | None = None  # None: no per-sample records
    n_total: int | None = None  # the larger of the two runs' sample counts
    note: str = ""

    @property
    def significant(self) -> bool:
        return ci_excludes_zero(self.ci_low, self.ci_high)

    @property
    def on_subset(self) -> bool:
        return self.n_paired is not None and self.n_total is not None and self.n_paired < self.n_total


@dataclass
class MetricComparison:
    """One (task, metric) row: the baseline's value and one cell per other checkpoint."""

    task: str
    metric: str
    higher_is_better: bool
    baseline: str
    baseline_value: float
    cells: dict[str, ComparisonCell] = field(default_factory=dict)
    confidence: float = 0.95

    def is_better(self, checkpoint: str) -> bool:
        """Significantly better than the baseline, taking the metric's direction into account."""
        cell = self.cells[checkpoint]
        return cell.significant and ((cell.delta > 0) == self.higher_is_better)


def _declarations(spec: TaskSpec | None, record: Mapping[str, Any]) -> tuple[MetricSpec, ...]:
    if spec is not None:
        return spec.metrics
    return tuple(
        MetricSpec(m["name"], bool(m.get("higher_is_better", True)), m.get("aggregation", "mean"))
        for m in declared_metrics(record)
    )


@dataclass
class _PairOutcome:
    values_a: dict[str, float]
    values_b: dict[str, float]
    intervals: dict[str, tuple[float, float, float]]
    n_paired: int | None
    n_total: int | None
    notes: list[str]
    metric_notes: dict[str, str]


def _compare_pair(
    base: Mapping[str, Any],
    base_samples: list[dict],
    other: Mapping[str, Any],
    other_samples: list[dict],
    metrics: Sequence[MetricSpec],
    spec: TaskSpec | None,
    n_resamples: int,
    seed: int,
    confidence: float,
) -> _PairOutcome:
    stored_a, stored_b = dict(base["metrics"]), dict(other["metrics"])
    outcome = _PairOutcome(stored_a, stored_b, {}, None, None, [], {})
    settings = comparability_differences(base, other)
    differences = ([f"differs in {', '.join(settings)}"] if settings else []) + provenance_differences(base, other)
    if differences:
        outcome.notes.append(f"not like for like: {'; '.join(differences)}")
    if not base_samples or not other_samples:
        outcome.notes.append("no per-sample records, so no CI")
        return outcome
    try:
        pairs_a, pairs_b = pair_by_id(base_samples, other_samples)
    except ValueError as exc:
        outcome.notes.append(f"no CI: {exc}")
        return outcome
    outcome.n_paired, outcome.n_total = len(pairs_a), max(len(base_samples), len(other_samples))

    means = [m.name for m in metrics if m.aggregation == "mean" and m.name in stored_a and m.name in stored_b]
    by_task = [m for m in metrics if m.aggregation == "task" and m.name in stored_a and m.name in stored_b]
    recompute: Recompute | None = None
    resampler = None
    if by_task and spec is not None and spec.aggregate is not None:
        params = (base.get("config") or {}).get("params") or dict(spec.params)
        recompute = lambda records: aggregate_metrics(by_task, spec.aggregate, records, params)  # noqa: E731
        resampler = resampler_of(spec.aggregate)
    elif by_task:
        for m in by_task:
            outcome.metric_notes[m.name] = (
                f"no CI: {m.name} is computed by the task's aggregate and task {base['task']['name']!r} is not "
                "registered here (load its plugin with --plugins)"
            )
    if outcome.n_paired < outcome.n_total:  # values on the shared samples, so value, delta and CI agree
        outcome.values_a = aggregate_metrics([MetricSpec(n) for n in means], None, pairs_a, {})
        outcome.values_b = aggregate_metrics([MetricSpec(n) for n in means], None, pairs_b, {})
        if recompute is not None:
            outcome.values_a.update(recompute(list(pairs_a)))
            outcome.values_b.update(recompute(list(pairs_b)))
        outcome.notes.append(
            f"value, delta and CI on the {outcome.n_paired} of {outcome.n_total} samples both runs scored"
        )
    if not means and recompute is None:
        return outcome
    try:
        outcome.intervals = paired_bootstrap(
            pairs_a, pairs_b, mean_metrics=means, recompute=recompute, resampler=resampler,
            n_resamples=n_resamples, seed=seed, confidence=confidence,
        )  # fmt: skip
    except Exception as exc:  # a task aggregate that fails on a resample must not sink the whole comparison
        outcome.notes.append(f"no CI: the task's aggregate failed ({type(exc).__name__}: {exc})")
        return outcome
    for metric in by_task:
        if metric.name not in outcome.intervals and metric.name not in outcome.metric_notes:
            outcome.metric_notes[metric.name] = (
                f"no CI: the task's aggregate does not recompute {metric.name} from per-sample records"
            )
    return outcome


def compare_runs(
    output_dir: Path,
    baseline: str | None = None,
    specs: Mapping[str, TaskSpec] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    *,
    confidence: float = 0.95,
    cache: bool = False,
) -> list[MetricComparison]:
    """Every (task, metric) stored for the baseline and at least one other checkpoint, with paired CIs.

    ``specs``: registered tasks, whose declarations and aggregates are used; a task not among them is compared on
    the declarations stored in its records (its ``aggregation="task"`` metrics then get no CI). The baseline
    defaults to the first checkpoint name in sorted order. ``cache=True`` reads the comparison from
    ``OUTPUT/.compare_cache/`` when nothing it covers has changed since it was computed (:mod:`.cache`).
    """
    check_bootstrap_settings(n_resamples, confidence)
    if cache:  # the cache module reads and writes these rows, so it is imported here, not at the top
        from coca_bench.compare.cache import cached_comparison

        options = {"baseline": baseline, "n_resamples": n_resamples, "seed": seed, "confidence": confidence}
        compute = lambda: compare_runs(output_dir, baseline, specs, n_resamples, seed, confidence=confidence)  # noqa: E731
        return cached_comparison(compute, output_dir, specs, options)
    store = ResultStore(output_dir)
    records = store.records()
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
        spec = (specs or {}).get(task)
        metrics = _declarations(spec, base)
        base_samples = store.samples(baseline, task)
        outcomes = {
            other: _compare_pair(
                base,
                base_samples,
                runs[other],
                store.samples(other, task),
                metrics,
                spec,
                n_resamples,
                seed,
                confidence,
            )  # fmt: skip
            for other in sorted(runs)
            if other != baseline
        }
        for metric in metrics:
            if metric.name not in base["metrics"]:
                continue
            row = MetricComparison(
                task, metric.name, metric.higher_is_better, baseline, base["metrics"][metric.name],
                confidence=confidence,
            )  # fmt: skip
            for other, outcome in outcomes.items():
                if metric.name not in runs[other]["metrics"]:
                    continue
                value, base_value = outcome.values_b[metric.name], outcome.values_a[metric.name]
                delta, low, high = outcome.intervals.get(metric.name, (value - base_value, math.nan, math.nan))
                notes = outcome.notes + (
                    [outcome.metric_notes[metric.name]] if metric.name in outcome.metric_notes else []
                )
                row.cells[other] = ComparisonCell(
                    value, base_value, delta, low, high, outcome.n_paired, outcome.n_total, "; ".join(notes)
                )
            if row.cells:
                comparisons.append(row)
    return comparisons


__all__ = ["ComparisonCell", "MetricComparison", "compare_runs"]
