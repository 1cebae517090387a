"""pandas views of an output folder: the long results frame, per-sample frames and the wide summary.

Everything people tabulate (``summary.csv``/``.md``, the comparison tables, the HTML report) is rendered from these
frames, so there is one reading of the result files and one place where their fields become columns. pandas is
imported inside the functions: ``--tasks list`` imports this module and must stay instant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coca_bench.results.schema import declared_metrics
from coca_bench.results.store import ResultStore

if TYPE_CHECKING:
    import pandas as pd

RESULT_COLUMNS: tuple[str, ...] = (
    "checkpoint",
    "task",
    "metric",
    "value",
    "higher_is_better",
    "aggregation",
    "num_samples",
    "skipped",
    "precision",
    "seed",
    "limit",
    "strict",
    "split",
    "dataset",
    "dataset_fingerprint",
    "checkpoint_sha256",
    "task_version",
    "key",
    "git_commit",
    "finished_at",
)
"""Columns of :func:`load_results`, one row per (checkpoint, task, metric)."""

_NULLABLE_INTS = ("num_samples", "skipped", "seed", "limit", "task_version")


def _metric_names(record: Mapping[str, Any]) -> list[str]:
    """Declared metrics in declaration order, then any other stored metric (older records), each once."""
    stored = record.get("metrics") or {}
    names = [m["name"] for m in declared_metrics(record) if m.get("name") in stored]
    return names + [name for name in stored if name not in names]


def result_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The long-form rows of one ``<task>.json`` record: one per stored metric."""
    aggregation = {m["name"]: m.get("aggregation") for m in declared_metrics(record)}
    settings = (record.get("run") or {}).get("settings") or {}
    dataset = record.get("dataset") or {}
    checkpoint = record.get("checkpoint") or {}
    common = {
        "checkpoint": checkpoint.get("name"),
        "task": record["task"]["name"],
        "num_samples": record.get("num_samples"),
        "skipped": len(record.get("skipped") or []),
        "precision": settings.get("precision"),
        "seed": settings.get("seed"),
        "limit": settings.get("limit"),
        "strict": settings.get("strict"),
        "split": dataset.get("split"),
        "dataset": dataset.get("name"),
        "dataset_fingerprint": dataset.get("fingerprint"),
        "checkpoint_sha256": checkpoint.get("sha256"),
        "task_version": record["task"].get("version"),
        "key": record.get("key"),
        "git_commit": record.get("git_commit"),
        "finished_at": (record.get("run") or {}).get("finished_at"),
    }
    rows = []
    for name in _metric_names(record):
        value = record["metrics"][name]
        rows.append(
            {
                **common,
                "metric": name,
                "value": math.nan if value is None else float(value),
                "higher_is_better": bool((record.get("higher_is_better") or {}).get(name, True)),
                "aggregation": aggregation.get(name),
            }
        )
    return rows


def results_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The long results frame of already-loaded records (see :func:`load_results`)."""
    import pandas as pd

    rows = [row for record in records for row in result_rows(record)]
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    frame["value"] = frame["value"].astype("float64")
    frame["higher_is_better"] = frame["higher_is_better"].astype(bool)
    frame["strict"] = frame["strict"].astype("boolean")
    for column in _NULLABLE_INTS:  # nullable: a missing limit is "no limit", not NaN
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    return frame


def load_results(output_dir: Path | str) -> pd.DataFrame:
    """Every stored result of ``output_dir`` in long form: one row per (checkpoint, task, metric).

    Rows follow (checkpoint, task) sorted by name and each task's declared metric order; ``value`` is NaN where a
    metric is undefined (``null`` on disk); ``skipped`` counts the recorded skips. See :data:`RESULT_COLUMNS`.
    """
    return results_frame(ResultStore(output_dir).records())


def load_samples(output_dir: Path | str, checkpoint: str, task: str) -> pd.DataFrame:
    """The per-sample records of one stored result, one row per line of ``<task>.samples.jsonl``.

    Columns are the record fields (``id``, metric fields, labels, predictions...); list fields stay Python lists.
    """
    import pandas as pd

    store = ResultStore(output_dir)
    if store.load(checkpoint, task) is None:
        stored = sorted({(r["checkpoint"]["name"], r["task"]["name"]) for r in store.records()})
        raise ValueError(
            f"{output_dir} has no result for checkpoint {checkpoint!r} and task {task!r}; it holds "
            f"{', '.join(f'{c}/{t}' for c, t in stored) or 'no results'}."
        )
    samples = store.samples(checkpoint, task)
    return pd.DataFrame.from_records(samples) if samples else pd.DataFrame({"id": []})


# --------------------------------------------------------------------------- the wide summary


def summary_columns(
    results: pd.DataFrame, metric_order: Mapping[str, Sequence[str]] | None = None
) -> list[tuple[str, str, bool]]:
    """(task, metric, higher_is_better) in a stable order: registry order when given, else task names sorted; within
    a task its declared metric order."""
    declared: dict[str, list[str]] = {}
    direction: dict[tuple[str, str], bool] = {}
    for task, metric, up in results[["task", "metric", "higher_is_better"]].itertuples(index=False):
        names = declared.setdefault(task, [])
        if metric not in names:
            names.append(metric)
            direction[(task, metric)] = bool(up)
    order = dict(metric_order or {})
    tasks = [t for t in order if t in declared] + sorted(t for t in declared if t not in order)
    columns = []
    for task in tasks:
        present = declared[task]
        wanted = [m for m in order.get(task, ()) if m in present] + [m for m in present if m not in order.get(task, ())]
        columns += [(task, metric, direction[(task, metric)]) for metric in wanted]
    return columns


def summary_frame(
    results: pd.DataFrame, metric_order: Mapping[str, Sequence[str]] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(values, ran): one row per checkpoint (sorted), one column per ``task/metric`` in :func:`summary_columns`
    order. ``values`` is NaN both where a task did not run and where a metric is undefined; ``ran`` tells them apart.
    """
    import pandas as pd

    names = [f"{t}/{m}" for t, m, _ in summary_columns(results, metric_order)]
    checkpoints = sorted(results["checkpoint"].unique())
    keyed = results.assign(column=results["task"] + "/" + results["metric"], ran=True)
    index = pd.Index(checkpoints, name="checkpoint")
    if keyed.empty:
        empty = pd.DataFrame(index=index, columns=pd.Index(names, dtype=object))
        return empty.astype("float64"), empty.astype(bool)
    values = keyed.pivot(index="checkpoint", columns="column", values="value").reindex(index=index, columns=names)
    ran = keyed.pivot(index="checkpoint", columns="column", values="ran").reindex(index=index, columns=names)
    ran = ran.astype("boolean").fillna(False).astype(bool)
    values.columns.name = ran.columns.name = None
    return values.astype("float64"), ran


def best_checkpoints(values: pd.DataFrame, higher_is_better: Mapping[str, bool]) -> dict[str, set[str]]:
    """Per ``task/metric`` column, the checkpoints with the best value (ties share it); only where two or more
    checkpoints have a defined value and they differ, since a lone run, or a tie of all, is best of nothing."""
    best: dict[str, set[str]] = {}
    for column in values.columns:
        defined = values[column].dropna()
        if len(defined) < 2 or defined.nunique() == 1:
            continue
        target = defined.max() if higher_is_better.get(column, True) else defined.min()
        best[column] = set(defined.index[defined == target])
    return best


__all__ = [
    "RESULT_COLUMNS",
    "best_checkpoints",
    "load_results",
    "load_samples",
    "result_rows",
    "results_frame",
    "summary_columns",
    "summary_frame",
]
