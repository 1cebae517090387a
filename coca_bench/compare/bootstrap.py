"""Paired bootstrap confidence intervals over per-sample records (pure: records in, intervals out).

Two checkpoints evaluated on the same samples are compared *paired*: each resample draws the same sample ids for
both, so the interval reflects the difference between the models, not the spread of the data set (an unpaired test
on paired data is far too wide; see lm-eval-harness #3831). Only declared metrics get intervals: means of their
per-sample fields, everything else through the task's aggregate on every resample (vectorised over resamples when
the task declares a resampler). One draw of resample indices serves every metric of a pair.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from coca_bench.fileio import canonical_json
from coca_bench.metrics.resampling import ResamplerFactory

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


def _counts(indices: np.ndarray, n: int) -> np.ndarray:
    """``(rows, n)``: how often each resample row drew each record; every aggregate here depends on these alone."""
    rows = indices.shape[0]
    offsets = (np.arange(rows) * n)[:, None]
    return np.bincount((indices + offsets).ravel(), minlength=rows * n).reshape(rows, n).astype(float)


class _Means:
    """The mean metrics of both sides: a resample's mean is (counts @ values) / (counts @ present)."""

    def __init__(self, pairs_a: Sequence[Mapping[str, Any]], pairs_b: Sequence[Mapping[str, Any]], names: list[str]):
        self.names = names
        values_a, values_b = _field_matrix(pairs_a, names), _field_matrix(pairs_b, names)
        self.present_a, self.present_b = np.isfinite(values_a), np.isfinite(values_b)
        self.filled_a = np.where(self.present_a, values_a, 0.0)
        self.filled_b = np.where(self.present_b, values_b, 0.0)
        full_b = _nan_mean(self.filled_b.sum(0), self.present_b.sum(0))
        self.full = dict(zip(names, full_b - _nan_mean(self.filled_a.sum(0), self.present_a.sum(0))))

    def deltas(self, counts: np.ndarray) -> np.ndarray:
        """``(rows, metrics)`` differences b - a of the means of each row's resample."""
        mean_b = _nan_mean(counts @ self.filled_b, counts @ self.present_b)
        return mean_b - _nan_mean(counts @ self.filled_a, counts @ self.present_a)


class _TaskAggregate:
    """The metrics of the task's aggregate: the full-set values from ``recompute`` (their definition), each
    resample's from the vectorised ``resampler`` when the task declares one, else from ``recompute`` row by row."""

    def __init__(
        self,
        pairs_a: Sequence[Mapping[str, Any]],
        pairs_b: Sequence[Mapping[str, Any]],
        recompute: Recompute,
        resampler: ResamplerFactory | None,
    ) -> None:
        self.pairs_a, self.pairs_b, self.recompute = pairs_a, pairs_b, recompute
        full_a, full_b = recompute(list(pairs_a)), recompute(list(pairs_b))
        self.names = [name for name in full_b if name in full_a]
        self.full = {name: float(full_b[name]) - float(full_a[name]) for name in self.names}
        self.vectorised = None if resampler is None else (resampler(pairs_a), resampler(pairs_b))

    def deltas(self, indices: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """``(rows, metrics)`` differences b - a of the aggregate's metrics on each resample (NaN: undefined)."""
        if self.vectorised is not None:
            metrics_a, metrics_b = (evaluate(counts) for evaluate in self.vectorised)
            missing = [name for name in self.names if name not in metrics_a or name not in metrics_b]
            if missing:
                raise ValueError(f"the task's vectorised aggregate does not compute {missing}")
            return np.stack([np.asarray(metrics_b[name]) - np.asarray(metrics_a[name]) for name in self.names], axis=1)
        out = np.full((indices.shape[0], len(self.names)), np.nan)
        for r, row in enumerate(indices):
            metrics_a = self.recompute([self.pairs_a[i] for i in row])
            metrics_b = self.recompute([self.pairs_b[i] for i in row])
            for j, name in enumerate(self.names):
                a, b = metrics_a.get(name), metrics_b.get(name)
                if a is not None and b is not None:
                    out[r, j] = float(b) - float(a)
        return out


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
    resampler: ResamplerFactory | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Interval]:
    """metric -> (delta = b - a on the paired set, low, high): a percentile interval from paired resamples.

    Records are paired by ``id`` (ids in both runs only; none in common is an error). ``mean_metrics`` are means
    of the per-sample field of their name; ``recompute(records)`` returns the metrics that are not, and
    ``resampler`` (optional: :mod:`coca_bench.metrics.resampling`) computes them on all resamples at once. Only
    these get intervals: no other field of the records is ever treated as a metric. All metrics share one draw of
    resamples, in chunks. A difference is significant when the interval excludes 0 (:func:`ci_excludes_zero`).
    """
    check_bootstrap_settings(n_resamples, confidence)
    if not mean_metrics and recompute is None:
        raise ValueError("paired_bootstrap needs the metrics to compare: mean_metrics=[...] and/or recompute=...")
    pairs_a, pairs_b = pair_by_id(samples_a, samples_b)
    n = len(pairs_a)
    means = _Means(pairs_a, pairs_b, list(mean_metrics)) if mean_metrics else None
    aggregate = None if recompute is None else _TaskAggregate(pairs_a, pairs_b, recompute, resampler)
    stats: list[np.ndarray] = []
    for indices in _resample_chunks(n, n_resamples, seed):
        counts = _counts(indices, n)
        columns = [means.deltas(counts)] if means is not None else []
        columns += [aggregate.deltas(indices, counts)] if aggregate is not None else []
        stats.append(np.concatenate(columns, axis=1))
    stacked = np.concatenate(stats, axis=0)
    parts = [part for part in (means, aggregate) if part is not None]
    names = [name for part in parts for name in part.names]  # the columns of ``stacked``
    full = {name: delta for part in parts for name, delta in part.full.items()}  # the aggregate's win, as before
    return {name: _percentile_interval(full[name], stacked[:, j], confidence) for j, name in enumerate(names)}


__all__ = [
    "Interval",
    "Recompute",
    "check_bootstrap_settings",
    "ci_excludes_zero",
    "pair_by_id",
    "paired_bootstrap",
]
