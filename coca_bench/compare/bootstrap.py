"""Paired bootstrap confidence intervals over per-sample records (pure: records in, intervals out).

Two checkpoints evaluated on the same samples are compared *paired*: each resample draws the same sample ids for
both, so the interval reflects the difference between the models, not the spread of the data set (an unpaired test
on paired data is far too wide; see lm-eval-harness #3831). Only declared metrics get intervals: means of their
per-sample fields on the fast path, everything else through the task's aggregate on every resample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from coca_bench.fileio import canonical_json

Recompute = Callable[[list[Mapping[str, Any]]], Mapping[str, float]]
Interval = tuple[float, float, float]  # (delta = b - a on the paired set, ci low, ci high)

# Resample chunks are sized so that one chunk's index/count arrays stay around 32 MB each.
_MAX_CHUNK_ELEMENTS = 4_000_000


def ci_excludes_zero(low: float, high: float) -> bool:
    """The significance rule: the interval lies wholly above or below 0 (NaN bounds: not significant)."""
    return bool(low > 0 or high < 0)


# --------------------------------------------------------------------------- pairing


def _id_key(sample: Mapping[str, Any], side: str) -> str:
    if "id" not in sample:
        raise ValueError(
            f"A per-sample record of {side} has no 'id' field, so it cannot be paired: {dict(sample)!r:.200}."
        )
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


# --------------------------------------------------------------------------- resampling


def _resample_chunks(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap index rows ``(chunk, n)``; one generator for both paths, so they draw the same resamples."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, _MAX_CHUNK_ELEMENTS // max(1, n)))
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        yield rng.integers(0, n, size=(size, n))
        done += size


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
        stats.append(
            _nan_mean(counts @ filled_b, counts @ present_b) - _nan_mean(counts @ filled_a, counts @ present_a)
        )
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
    """General path: the task's own aggregate on each resample (slower; needed for metrics that are not means)."""
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


def check_bootstrap_settings(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1 (e.g. 0.95), got {confidence}.")


def paired_bootstrap(
    samples_a: Sequence[Mapping[str, Any]],
    samples_b: Sequence[Mapping[str, Any]],
    *,
    mean_metrics: Sequence[str] = (),
    recompute: Recompute | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Interval]:
    """metric -> (delta = b - a on the paired set, low, high): a percentile interval from paired resamples.

    Records are paired by ``id`` (ids in both runs only; none in common is an error). ``mean_metrics`` are means
    of the per-sample field of their name; ``recompute(records)`` returns the metrics that are not. Only these get
    intervals: no other field of the records is ever treated as a metric. A difference is significant when the
    interval excludes 0 (:func:`ci_excludes_zero`).
    """
    check_bootstrap_settings(n_resamples, confidence)
    if not mean_metrics and recompute is None:
        raise ValueError("paired_bootstrap needs the metrics to compare: mean_metrics=[...] and/or recompute=...")
    pairs_a, pairs_b = pair_by_id(samples_a, samples_b)
    intervals: dict[str, Interval] = {}
    if mean_metrics:
        intervals.update(_bootstrap_means(pairs_a, pairs_b, list(mean_metrics), n_resamples, seed, confidence))
    if recompute is not None:
        intervals.update(_bootstrap_recompute(pairs_a, pairs_b, recompute, n_resamples, seed, confidence))
    return intervals


__all__ = [
    "Interval",
    "Recompute",
    "check_bootstrap_settings",
    "ci_excludes_zero",
    "pair_by_id",
    "paired_bootstrap",
]
