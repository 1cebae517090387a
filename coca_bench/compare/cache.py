"""A comparison stored under the hashes of everything it was computed from, so that a rerun with nothing new is a read.

``compare`` and ``report`` on an unchanged output folder would redo the same bootstrap: same records, same options,
same code, same numbers. The key is the sha256 of every result record and per-sample file of the folder (a
comparison reads them all), the options (baseline, resamples, seed, confidence), the declarations and source of
every registered task found there (a plugin changes the numbers), and the code that computes a comparison (every
module of the package, each task's source file, and the library versions). Any change is a new key, so a stale
comparison is never found; the entry is JSON (floats round-trip exactly), under ``OUTPUT/.compare_cache/``, which
the result store skips, and only the latest few entries are kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from coca_bench.compare.matching import ComparisonCell, MetricComparison
from coca_bench.fileio import atomic_write_text, dumps_json, sha256_file, sha256_text
from coca_bench.fingerprints import PACKAGE_ROOT, package_versions
from coca_bench.registry import TaskSpec
from coca_bench.results import ResultStore

log = logging.getLogger("coca_bench.compare")

CACHE_FOLDER = ".compare_cache"
CACHE_VERSION = 1
KEEP_ENTRIES = 8
_CELL_FLOATS = ("value", "baseline_value", "delta", "ci_low", "ci_high")


def _results_material(output_dir: Path) -> tuple[list[list[str]], set[str]]:
    """(relative path, sha256) of every record and per-sample file in the folder (hashes remembered by the memo),
    and the tasks they are of."""
    store = ResultStore(output_dir)
    files, tasks = [], set()
    for record in store.records():
        tasks.add(record["task"]["name"])
        checkpoint, task = record["checkpoint"]["name"], record["task"]["name"]
        for path in (store.json_path(checkpoint, task), store.samples_path(checkpoint, task)):
            digest = sha256_file(path) if path.is_file() else "absent"
            files.append([path.relative_to(output_dir).as_posix(), digest])
    return files, tasks


def _code_material(specs: Mapping[str, TaskSpec], tasks: set[str]) -> dict[str, Any]:
    """The code: every module of the package (the comparison, the metrics and whatever they use) and each task's
    source file (its aggregate, a plugin's included), by content, and the library versions. Whole files rather
    than an import closure: hashing them through the memo costs milliseconds, parsing them would not."""
    files = sorted(PACKAGE_ROOT.rglob("*.py"))
    files += sorted({Path(specs[t].source) for t in tasks if t in specs and Path(specs[t].source).is_file()})
    return {"files": [[path.name, sha256_file(path)] for path in files], "versions": package_versions()}


def _spec_material(spec: TaskSpec | None) -> Any:
    if spec is None:
        return None
    metrics = [[m.name, m.higher_is_better, m.aggregation] for m in spec.metrics]
    return {"metrics": metrics, "params": dict(spec.params), "source": spec.source, "version": spec.version}


def comparison_key(
    output_dir: Path,
    specs: Mapping[str, TaskSpec] | None,
    options: Mapping[str, Any],
) -> str:
    """sha256 over everything a comparison of ``output_dir`` depends on (see the module docstring)."""
    results, tasks = _results_material(output_dir)
    specs = specs or {}
    material = {
        "version": CACHE_VERSION,
        "options": dict(options),
        "results": results,
        "specs": {task: _spec_material(specs.get(task)) for task in sorted(tasks)},
        "code": _code_material(specs, tasks),
    }
    return sha256_text(dumps_json(material, sort_keys=True))


def _rows_to_json(rows: list[MetricComparison]) -> str:
    return dumps_json([dataclasses.asdict(row) for row in rows])


def _rows_from_json(text: str) -> list[MetricComparison]:
    """The stored rows, NaN restored (JSON stores it as null) in the float fields only."""

    def number(value: Any) -> float:
        return math.nan if value is None else float(value)

    rows = []
    for row in json.loads(text):
        cells = {
            name: ComparisonCell(**{**cell, **{f: number(cell[f]) for f in _CELL_FLOATS}})
            for name, cell in row.pop("cells").items()
        }
        rows.append(MetricComparison(**{**row, "baseline_value": number(row["baseline_value"]), "cells": cells}))
    return rows


def _prune(folder: Path, keep: int) -> None:
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for stale in entries[keep:]:
        with contextlib.suppress(OSError):
            stale.unlink()


def cached_comparison(
    compute: Callable[[], list[MetricComparison]],
    output_dir: Path,
    specs: Mapping[str, TaskSpec] | None,
    options: Mapping[str, Any],
) -> list[MetricComparison]:
    """``compute()`` (a comparison of ``output_dir`` with ``specs`` and ``options``), read from
    ``OUTPUT/.compare_cache/`` when nothing it depends on has changed since it was last computed, else computed and
    stored there. Used by ``compare_runs(..., cache=True)``."""
    output_dir = Path(output_dir)
    path = output_dir / CACHE_FOLDER / f"{comparison_key(output_dir, specs, options)}.json"
    if path.is_file():
        try:
            rows = _rows_from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError, KeyError) as exc:  # a damaged entry only costs the recomputation
            log.warning("Ignoring the damaged cached comparison %s (%s); recomputing it.", path, exc)
        else:
            log.info("Comparison unchanged since it was computed: read from %s", path)
            return rows
    rows = compute()
    if rows:
        with contextlib.suppress(OSError):  # a read-only output folder only costs speed
            path.parent.mkdir(exist_ok=True)
            atomic_write_text(path, _rows_to_json(rows))
            _prune(path.parent, KEEP_ENTRIES)
    return rows


__all__ = ["CACHE_FOLDER", "cached_comparison", "comparison_key"]
