"""Timing primitives for benchmarks on a shared, noisy machine.

Contenders are timed *interleaved* (A, B, B, A, A, B ...) rather than one after the other, so that a burst of load
from a neighbour hits every contender alike; speed ratios are taken per repeat (a side-by-side pair) and then the
median, which is what makes them trustworthy when absolute times drift by 2x.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch


@dataclass
class Measurement:
    """Wall-clock seconds of each timed repeat, plus every output (the warm-up run's first) for identity checks."""

    seconds: list[float] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def summary(self, items: int) -> dict[str, float]:
        """Median / min / max seconds and the median throughput for ``items`` processed per call."""
        return {
            "median_s": self.median,
            "min_s": min(self.seconds),
            "max_s": max(self.seconds),
            "items_per_s": items / self.median,
        }


def interleaved(contenders: dict[str, Callable[[], Any]], repeats: int, warmup: bool = True) -> dict[str, Measurement]:
    """Time each contender ``repeats`` times, alternating the order every round (ABBA) to cancel drift.

    The untimed warm-up call (one per contender) pays one-off costs (oneDNN kernel selection, allocator growth);
    its output is kept first in ``outputs`` so callers can check that every timed run reproduced it.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    results = {name: Measurement() for name in contenders}
    if warmup:
        for name, run in contenders.items():
            results[name].outputs.append(run())
    order = list(contenders)
    for round_index in range(repeats):
        for name in order if round_index % 2 == 0 else reversed(order):
            start = time.perf_counter()
            output = contenders[name]()
            results[name].seconds.append(time.perf_counter() - start)
            results[name].outputs.append(output)
    return results


def paired_ratio(numerator: Measurement, denominator: Measurement) -> float:
    """Median over repeats of numerator/denominator seconds, each pair timed in the same round."""
    return statistics.median(n / d for n, d in zip(numerator.seconds, denominator.seconds))


def read_bandwidth(nbytes: int, repeats: int) -> float:
    """Memory read bandwidth in bytes/s: the median time of summing a float32 array of ``nbytes``.

    A sum streams every byte once and does almost no arithmetic, like a batch-1 decode step streaming its weights.
    Arrays larger than the last-level cache measure DRAM; smaller ones partly measure the cache.
    """
    data = torch.ones(max(nbytes // 4, 1), dtype=torch.float32)
    data.sum()  # first touch: page faults, not bandwidth
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        data.sum()
        seconds.append(time.perf_counter() - start)
    return data.numel() * 4 / statistics.median(seconds)
