"""Task registry: the contract between the runner and task plugins.

A task plugin is a module (a file in ``tasks/``, a folder given with ``--plugins``,
or a module named by the ``coca_bench.tasks`` entry-point group) that calls
:func:`register_task`. The registry must stay importable without torch, so that
``--tasks list`` is instant; plugins keep heavy imports out of module level and
reach the model only through :class:`TaskContext`.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence


class RegistryError(ValueError):
    """A plugin could not be loaded or registered."""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool = True
    description: str = ""


@dataclass
class Skip:
    """A sample that could not be read; recorded in the results instead of being scored."""

    sample_id: str
    reason: str


@dataclass
class TaskResult:
    """What a task returns: metrics plus per-sample records.

    ``samples`` carry an ``"id"`` and, for every metric that is a per-sample mean,
    a field of the same name (``top1``: 0 or 1). Comparison resamples these
    records; metrics that are not plain means are recomputed through
    :attr:`TaskSpec.aggregate`.
    """

    metrics: dict[str, float]
    samples: list[dict[str, Any]] = field(default_factory=list)
    split: str = ""
    annotation_files: list[Path] = field(default_factory=list)
    extra_config: dict[str, Any] = field(default_factory=dict)
    skipped: list[Skip] = field(default_factory=list)


@dataclass
class TaskContext:
    """Everything a task may use. Built by the runner; tasks never build models or write files."""

    model: Any  # coca_bench.model.CocaModel
    features: Any  # coca_bench.features.FeatureExtractor (cached, batched encoding)
    data_root: Path
    device: str = "cpu"
    precision: str = "fp32"
    batch_size: int = 32
    num_workers: int = 0
    limit: int | None = None
    seed: int = 0
    strict: bool = False

    def dataset_dir(self, spec: "TaskSpec") -> Path:
        return self.data_root / spec.dataset


TaskFn = Callable[[TaskContext, dict[str, Any]], TaskResult]
AggregateFn = Callable[[Sequence[Mapping[str, Any]], dict[str, Any]], dict[str, float]]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    run: TaskFn
    groups: tuple[str, ...]
    dataset: str
    metrics: tuple[MetricSpec, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    version: int = 1
    aggregate: AggregateFn | None = None
    source: str = ""

    def resolve_params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            raise RegistryError(
                f"Task {self.name!r} has no parameter(s) {unknown}; its parameters are {sorted(self.params)}."
            )
        return {**self.params, **overrides}

    def metric(self, name: str) -> MetricSpec | None:
        return next((m for m in self.metrics if m.name == name), None)

    def recompute(self, samples: Sequence[Mapping[str, Any]], params: dict[str, Any]) -> dict[str, float]:
        """Metrics from a (re)sample of per-sample records, for the bootstrap."""
        if self.aggregate is not None:
            return self.aggregate(samples, params)
        out: dict[str, float] = {}
        for m in self.metrics:
            values = [float(s[m.name]) for s in samples if m.name in s]
            if values:
                out[m.name] = sum(values) / len(values)
        return out


_TASKS: dict[str, TaskSpec] = {}
_loading_source: str = ""


def register_task(
    name: str,
    *,
    groups: Iterable[str],
    dataset: str,
    metrics: Iterable[MetricSpec | str],
    params: Mapping[str, Any] | None = None,
    description: str = "",
    version: int = 1,
    aggregate: AggregateFn | None = None,
) -> Callable[[TaskFn], TaskFn]:
    """Decorator registering ``fn(ctx, params) -> TaskResult`` as task ``name``."""

    def decorator(fn: TaskFn) -> TaskFn:
        source = _loading_source or getattr(sys.modules.get(fn.__module__), "__file__", "") or fn.__module__
        if name in _TASKS and _TASKS[name].source != source:
            raise RegistryError(
                f"Task name {name!r} is registered twice: in {_TASKS[name].source} and in {source}; rename one of them."
            )
        metric_specs = tuple(m if isinstance(m, MetricSpec) else MetricSpec(m) for m in metrics)
        _TASKS[name] = TaskSpec(
            name=name,
            run=fn,
            groups=tuple(groups),
            dataset=dataset,
            metrics=metric_specs,
            params=dict(params or {}),
            description=description or next(iter((fn.__doc__ or "").strip().splitlines()), ""),
            version=version,
            aggregate=aggregate,
            source=source,
        )
        return fn

    return decorator


def _load_file(path: Path) -> None:
    global _loading_source
    module_name = f"coca_bench_plugin_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RegistryError(f"Cannot load task plugin {path}: not a Python module.")
    module = importlib.util.module_from_spec(spec)
    _loading_source = str(path)
    try:
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except RegistryError:
        raise
    except Exception as exc:  # a broken plugin must name its file
        sys.modules.pop(module_name, None)
        raise RegistryError(f"Task plugin {path} failed to import: {type(exc).__name__}: {exc}") from exc
    finally:
        _loading_source = ""


def load_plugins(folders: Sequence[Path] = (), entry_points: bool = True) -> dict[str, TaskSpec]:
    """Import every ``*.py`` in ``folders`` (sorted) and every ``coca_bench.tasks`` entry point."""
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise RegistryError(f"Plugin folder {folder} does not exist; pass an existing directory to --plugins.")
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            if any(spec.source == str(path) for spec in _TASKS.values()):
                continue
            _load_file(path)
    if entry_points:
        from importlib.metadata import entry_points as _eps

        for ep in _eps(group="coca_bench.tasks"):
            try:
                ep.load()
            except Exception as exc:
                raise RegistryError(
                    f"Task plugin entry point {ep.name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}"
                ) from exc
    return dict(_TASKS)


def all_tasks() -> dict[str, TaskSpec]:
    return dict(_TASKS)


def get_task(name: str) -> TaskSpec:
    try:
        return _TASKS[name]
    except KeyError:
        raise RegistryError(f"Unknown task {name!r}; run `run_suite.py --tasks list` to see the registered tasks.") from None


def select_tasks(selector: str) -> list[TaskSpec]:
    """``all``, or comma-separated task names and group names, in registry order without repeats."""
    tasks = list(_TASKS.values())
    if selector.strip() == "all":
        return tasks
    chosen: list[TaskSpec] = []
    for token in (t.strip() for t in selector.split(",")):
        if not token:
            continue
        if token in _TASKS:
            matched = [_TASKS[token]]
        else:
            matched = [t for t in tasks if token in t.groups]
        if not matched:
            groups = sorted({g for t in tasks for g in t.groups})
            raise RegistryError(
                f"--tasks names {token!r}, which is neither a task nor a group; tasks: {sorted(_TASKS)}, groups: {groups}."
            )
        chosen.extend(t for t in matched if t not in chosen)
    return chosen


def _clear_for_tests() -> None:
    _TASKS.clear()


__all__ = [
    "MetricSpec",
    "RegistryError",
    "Skip",
    "TaskContext",
    "TaskResult",
    "TaskSpec",
    "all_tasks",
    "get_task",
    "load_plugins",
    "register_task",
    "select_tasks",
]
