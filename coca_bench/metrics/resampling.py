"""Vectorised bootstrap forms of task aggregates: every resample at once, from arrays prepared once.

A task's ``aggregate(samples, params)`` defines its metrics; the comparison's paired bootstrap could call it on each
of 1,000 resamples per side, but that costs 2,000 Python calls per task and, for captioning, re-reads every caption
each time. A *resampler* gives the same numbers for all resamples in a few array operations:
``factory(samples, **options)`` prepares per-sample arrays once and returns ``evaluate(counts)``, where
``counts[r, i]`` is how often resample ``r`` drew record ``i``; ``evaluate`` returns ``{metric: values}`` with one
value per resample. Every aggregate here depends on the multiset of records only, so counts say all that matters.

A task opts in with :func:`resampled_by` on its aggregate; a plugin without one keeps the per-resample path. The
factory is named as ``"module:function"`` so that registering a task imports nothing (``--tasks list`` stays
instant). No numpy at module level, for the same reason.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import numpy as np

Resampler = Callable[["np.ndarray"], Mapping[str, "np.ndarray"]]
ResamplerFactory = Callable[[Sequence[Mapping[str, Any]]], Resampler]
F = TypeVar("F", bound=Callable[..., Any])


def resampled_by(target: str, **options: Any) -> Callable[[F], F]:
    """Mark a task aggregate as equal, on every resample, to ``target(samples, **options)`` (``"module:function"``).

    The bootstrap then evaluates the aggregate's metrics on all resamples at once. The aggregate itself is
    unchanged and stays the definition: the runner and the full-set values still call it.
    """
    module, _, name = target.partition(":")
    if not module or not name:
        raise ValueError(f"resampled_by needs 'module:function', got {target!r}.")

    def factory(samples: Sequence[Mapping[str, Any]]) -> Resampler:
        return getattr(importlib.import_module(module), name)(samples, **options)

    def attach(aggregate: F) -> F:
        aggregate.resampler = factory  # type: ignore[attr-defined]
        return aggregate

    return attach


def resampler_of(aggregate: Callable[..., Any] | None) -> ResamplerFactory | None:
    """The vectorised form declared with :func:`resampled_by`, or None (then the aggregate runs per resample)."""
    return getattr(aggregate, "resampler", None)


class SegmentSums:
    """Sums of a matrix's columns by segment (``ids[t]`` is column t's segment), for one segmentation applied to
    every chunk of resamples: the sort is paid once, each call is one gather and one ``np.add.reduceat``."""

    def __init__(self, ids: np.ndarray, num_segments: int) -> None:
        import numpy as np

        ids = np.asarray(ids, dtype=np.intp)
        self.order = np.argsort(ids, kind="stable")
        ordered = ids[self.order]
        self.starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if ordered.size else ordered
        self.present = ordered[self.starts]
        self.num_segments = num_segments

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """``(rows, num_segments)`` sums of ``values`` ``(rows, columns)``; a segment with no column sums to 0."""
        import numpy as np

        out = np.zeros((values.shape[0], self.num_segments))
        if self.starts.size:
            out[:, self.present] = np.add.reduceat(values[:, self.order], self.starts, axis=1)
        return out


def group_means(counts: np.ndarray, sums: SegmentSums, values: np.ndarray) -> np.ndarray:
    """``(resamples, groups)`` means of per-record ``values`` within each group of ``sums``, weighted by ``counts``;
    NaN for a group that no drawn record falls in (as the mean of an empty list would be)."""
    import numpy as np

    sizes, totals = sums(counts), sums(counts * np.asarray(values, dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, totals / np.maximum(sizes, 1.0), np.nan)


__all__ = ["Resampler", "ResamplerFactory", "SegmentSums", "group_means", "resampled_by", "resampler_of"]
