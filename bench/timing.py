"""Timing primitives for benchmarks on a shared, noisy machine.

Contenders are timed *interleaved*, one round at a time (A, B, then B, A, ...), so that a slow spell hits every
contender alike, and speed ratios are taken per round (a side-by-side pair) before the median.

That is not enough on a 2-core machine shared with other jobs: when a neighbour runs multi-threaded torch while we
do, OpenMP threads oversubscribe the cores and calls made of many small parallel regions (a KV-cached decode step)
slow down far more (10x was seen) than calls made of a few large matmuls. So every timed call also records how many
cores *other* processes kept busy meanwhile (from ``/proc/stat`` minus our own CPU time), a round with a busy
neighbour is flagged and re-run while the budget allows, and statistics use the quiet rounds when there are any.

Every benchmark prints :func:`cpu_line` first: its figures hold for that CPU, bf16 figures above all (native bf16
arithmetic, AMX or AVX-512-BF16, makes bf16 faster than fp32; without it bf16 is slower).
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

QUIET_FOREIGN_CORES = 0.25  # a round is quiet when no call saw other processes use more than this many cores


def cpu_line() -> str:
    """``CPU: <model> (<flags>; native bf16 or not)``: the machine a benchmark's figures were measured on."""
    from coca_bench.hardware import detect

    return detect().describe()


def print_cpu_line() -> None:
    """Printed at the start of every benchmark, so that no figure is quoted without its CPU."""
    print(cpu_line(), flush=True)


@dataclass(frozen=True)
class CpuClock:
    """Machine-wide busy CPU seconds (all processes) and this process's own CPU seconds, at one instant."""

    wall: float
    machine_busy: float
    own: float

    @classmethod
    def now(cls) -> CpuClock:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return cls(time.perf_counter(), _machine_busy_seconds(), usage.ru_utime + usage.ru_stime)

    def foreign_cores(self, later: CpuClock) -> float:
        """Average number of cores other processes (and the hypervisor's steal) kept busy between two instants."""
        wall = later.wall - self.wall
        if wall <= 0 or math.isnan(self.machine_busy):
            return math.nan
        foreign = (later.machine_busy - self.machine_busy) - (later.own - self.own)
        return max(foreign, 0.0) / wall


def _ticks_per_second() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return 100


_TICKS_PER_SECOND = _ticks_per_second()


def _machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine from the ``cpu`` line of /proc/stat (NaN where there is none)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return math.nan
    ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal (guest is inside user)
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS_PER_SECOND


def foreign_load(window_s: float = 1.0) -> float:
    """Cores other processes keep busy, averaged over the next ``window_s`` seconds (we sleep meanwhile)."""
    before = CpuClock.now()
    time.sleep(window_s)
    return before.foreign_cores(CpuClock.now())


def wait_for_quiet(max_wait_s: float, window_s: float = 1.0) -> float:
    """Wait until other processes use at most ``QUIET_FOREIGN_CORES`` over a ``window_s`` window, or ``max_wait_s``.

    Returns the seconds waited. Cheaper than re-running a long round that a neighbour's burst spoiled.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait_s:
        load = foreign_load(window_s)
        if math.isnan(load) or load <= QUIET_FOREIGN_CORES:
            break
    return time.perf_counter() - start


@dataclass
class Measurement:
    """Per-round wall-clock seconds, the foreign load each call saw, and every timed output (for identity checks)."""

    seconds: list[float] = field(default_factory=list)
    foreign_cores: list[float] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    quiet_rounds: list[bool] = field(default_factory=list)  # shared by every contender of one ``interleaved`` call

    def kept_seconds(self) -> list[float]:
        """The quiet rounds' seconds, or every round's when none was quiet."""
        quiet = [s for s, ok in zip(self.seconds, self.quiet_rounds) if ok]
        return quiet or self.seconds

    @property
    def median(self) -> float:
        return statistics.median(self.kept_seconds())

    def summary(self, items: int) -> dict[str, Any]:
        """Median / min / max seconds over the kept rounds and the median throughput for ``items`` per call."""
        kept = self.kept_seconds()
        return {
            "median_s": statistics.median(kept),
            "min_s": min(kept),
            "max_s": max(kept),
            "items_per_s": items / statistics.median(kept),
            "all_rounds_s": self.seconds,
            "foreign_cores": self.foreign_cores,
        }


def interleaved(
    contenders: dict[str, Callable[[], Any]],
    repeats: int,
    warmups: dict[str, Callable[[], Any]] | None = None,
    extra_rounds: int = 0,
    deadline: float = math.inf,
    quiet_wait_s: float = 0.0,
) -> dict[str, Measurement]:
    """Time each contender once per round for ``repeats`` rounds, reversing the order every other round (ABBA).

    ``warmups`` (default: the contenders themselves) run once, untimed, first: they pay one-off costs (oneDNN
    kernel selection, allocator growth); pass cheaper calls that take the same code paths when a contender is slow.
    A round in which a neighbour kept more than ``QUIET_FOREIGN_CORES`` busy is re-run, up to ``extra_rounds``
    times and while ``time.monotonic() < deadline``; before each round, wait up to ``quiet_wait_s`` for quiet.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    for run in (warmups or contenders).values():
        run()
    results = {name: Measurement() for name in contenders}
    order = list(contenders)
    quiet_count = rounds = 0
    while quiet_count < repeats and rounds < repeats + extra_rounds:
        if rounds >= repeats and time.monotonic() >= deadline:
            break
        if quiet_wait_s > 0:
            wait_for_quiet(quiet_wait_s)
        loads = []
        for name in order if rounds % 2 == 0 else reversed(order):
            before = CpuClock.now()
            output = contenders[name]()
            after = CpuClock.now()
            loads.append(before.foreign_cores(after))
            results[name].seconds.append(after.wall - before.wall)
            results[name].foreign_cores.append(loads[-1])
            results[name].outputs.append(output)
        quiet = not any(load > QUIET_FOREIGN_CORES for load in loads)  # NaN (no /proc/stat) counts as quiet
        for measurement in results.values():
            measurement.quiet_rounds.append(quiet)
        quiet_count += quiet
        rounds += 1
    return results


def paired_ratio(numerator: Measurement, denominator: Measurement) -> float:
    """Median over rounds of numerator/denominator seconds, each pair timed in the same round (quiet rounds if any)."""
    pairs = list(zip(numerator.seconds, denominator.seconds, numerator.quiet_rounds))
    quiet = [(n, d) for n, d, ok in pairs if ok] or [(n, d) for n, d, _ in pairs]
    return statistics.median(n / d for n, d in quiet)


def quiet_round_count(measurement: Measurement) -> tuple[int, int]:
    """(quiet rounds, all rounds)."""
    return sum(measurement.quiet_rounds), len(measurement.quiet_rounds)


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
