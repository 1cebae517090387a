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


def summing_matrix(sources: np.ndarray, targets: np.ndarray, shape: tuple[int, int], weights: Any = 1.0) -> Any:
    """A sparse ``shape`` matrix S with ``S[sources[t], targets[t]] += weights[t]``, so that ``values @ S`` sums the
    weighted columns of ``values`` into ``targets`` for every row (resample) at once, in compiled code and without
    any ``(resamples, entries)`` temporary. scipy comes with scikit-learn; it is imported only when a comparison
    needs it."""
    import numpy as np
    from scipy.sparse import csr_matrix

    data = np.broadcast_to(np.asarray(weights, dtype=np.float64), np.shape(sources))
    return csr_matrix((data, (sources, targets)), shape=shape)


def group_means(counts: np.ndarray, members: Any, values: np.ndarray) -> np.ndarray:
    """``(resamples, groups)`` means of per-record ``values`` within each group, weighted by ``counts``, where
    ``members`` is the ``(records, groups)`` :func:`summing_matrix` of the records' groups; NaN for a group that no
    drawn record falls in (as the mean of an empty list would be)."""
    import numpy as np

    sizes, totals = counts @ members, (counts * np.asarray(values, dtype=np.float64)) @ members
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, totals / np.maximum(sizes, 1.0), np.nan)


__all__ = ["Resampler", "ResamplerFactory", "group_means", "resampled_by", "resampler_of", "summing_matrix"]
