"""Task registry: where tasks are declared (:func:`register_task`, :func:`variant`), found and loaded.

A task plugin is a module (a file in ``tasks/``, a folder given with ``--plugins``, or a module named by the
``coca_bench.tasks`` entry-point group) that calls :func:`register_task` or :func:`variant`. The contract itself
(:class:`TaskSpec`, :class:`TaskContext`, :class:`TaskResult`...) lives in :mod:`coca_bench.task` and is re-exported
here, where plugins import it from. The registry must stay importable without torch, so that ``--tasks list`` is
instant; plugins keep heavy imports out of module level and reach the model only through :class:`TaskContext`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import re
import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from coca_bench.params import Param, declare_params
from coca_bench.task import (  # the contract, re-exported: plugins import it from here
    AGGREGATIONS,
    AggregateFn,
    KeyMaterialFn,
    MetricSpec,
    RecordsRead,
    RegistryError,
    SampleView,
    Skip,
    TaskContext,
    TaskFn,
    TaskInputs,
    TaskResult,
    TaskSpec,
    aggregate_metrics,
    mean_of_field,
    read_records,
)

_TASKS: dict[str, TaskSpec] = {}
_PENDING_VARIANTS: list[tuple[str, str, dict[str, Any]]] = []  # (base, source, changes) until the base registers
_GROUP_AVERAGES: dict[str, GroupAverage] = {}
BUILTIN_PACKAGE = "coca_bench.builtin_tasks"
_PLUGIN_PACKAGE = "coca_bench_plugins"


def _caller_file(depth: int) -> str:
    frame = sys._getframe(depth + 1)
    return str(frame.f_globals.get("__file__") or frame.f_globals.get("__name__", "<unknown>"))


def _add(spec: TaskSpec) -> None:
    """One name, one task: the same file registering it again (a reload) replaces it; another file is refused."""
    if spec.name in _TASKS and _TASKS[spec.name].source != spec.source:
        raise RegistryError(
            f"Task name {spec.name!r} is registered twice: in {_TASKS[spec.name].source} and in {spec.source}; "
            "rename one of them."
        )
    _TASKS[spec.name] = spec


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
    key_material: KeyMaterialFn | None = None,
    view: SampleView | None = None,
) -> Callable[[TaskFn], TaskFn]:
    """Decorator registering ``fn(ctx, params) -> TaskResult`` as task ``name``.

    ``params``: name -> default, or :class:`~coca_bench.params.Param` for choices, a type for a ``None`` default,
    or help; every value is checked against its declaration before any work.
    ``aggregate(samples, params)`` computes the metrics declared with ``aggregation="task"``.
    ``key_material(params)`` returns what the parameters stand for (the template strings behind
    ``templates="openai"``), so that a library upgrade that changes them is not served from a stored result.
    The data a result depends on needs no declaration: the dataset fingerprint covers every file named by the record
    sets the task passes to ``ctx.load`` (which it must do before it first uses the model). A task with a
    ``dataset`` parameter reads that folder of the data root instead of its own. ``view`` says how the report
    shows the task's records (:class:`SampleView`); without one it shows a table of them.
    """

    def decorator(fn: TaskFn) -> TaskFn:
        source = getattr(sys.modules.get(fn.__module__), "__file__", "") or fn.__module__
        metric_specs = tuple(m if isinstance(m, MetricSpec) else MetricSpec(m) for m in metrics)
        needs_aggregate = [m.name for m in metric_specs if m.aggregation == "task"]
        if needs_aggregate and aggregate is None:
            raise RegistryError(
                f"Task {name!r} ({source}) declares metric(s) {needs_aggregate} with aggregation='task' "
                "but no aggregate=; pass the function that computes them from the per-sample records."
            )
        _add(
            TaskSpec(
                name=name,
                run=fn,
                groups=tuple(groups),
                dataset=dataset,
                metrics=metric_specs,
                param_specs=declare_params(name, params),
                description=description or next(iter((fn.__doc__ or "").strip().splitlines()), ""),
                version=version,
                aggregate=aggregate,
                key_material=key_material,
                source=source,
                view=view,
            )
        )
        _resolve_variants()
        return fn

    return decorator


def variant(
    base: str,
    name: str,
    *,
    dataset: str | None = None,
    params: Mapping[str, Any] | None = None,
    description: str | None = None,
    groups: Iterable[str] | None = None,
    version: int | None = None,
) -> None:
    """Register ``name`` as task ``base`` on another dataset: only what differs is said, the rest is inherited.

    ``params`` change defaults of the base's parameters (or declare new ones, as :class:`Param` or values); the
    protocol, metrics, aggregate and key material are the base's. The base may be registered later in the same
    plugin load (variants resolve when it appears). ``version`` defaults to the base's: a variant is the same code.
    """
    changes = {"name": name, "dataset": dataset, "params": dict(params or {}), "description": description,
               "groups": None if groups is None else tuple(groups), "version": version}  # fmt: skip
    _PENDING_VARIANTS.append((base, _caller_file(1), changes))
    _resolve_variants()


def _resolve_variants() -> None:
    still_pending = []
    for base, source, changes in _PENDING_VARIANTS:
        if base not in _TASKS:
            still_pending.append((base, source, changes))
            continue
        spec = _TASKS[base]
        declared = dict(spec.param_specs)
        for key, value in changes["params"].items():
            old = declared.get(key)
            if isinstance(value, Param) or old is None:
                declared[key] = value if isinstance(value, Param) else Param(value)
            else:
                declared[key] = dataclasses.replace(old, default=old.check(changes["name"], key, value))
        _add(
            dataclasses.replace(
                spec,
                name=changes["name"],
                dataset=changes["dataset"] or spec.dataset,
                param_specs=declare_params(changes["name"], declared),
                description=changes["description"] or f"{spec.description} (variant of {base})",
                groups=changes["groups"] or spec.groups,
                version=changes["version"] or spec.version,
                source=source,
                variant_of=base,
            )
        )
    _PENDING_VARIANTS[:] = still_pending


def _plugin_package(folder: Path) -> str:
    """A package whose ``__path__`` is the plugin folder, so a plugin imports a helper beside it (``from ._common
    import x``) and loads once under a stable name, however often the registry is read."""
    resolved = folder.resolve()
    tag = re.sub(r"\W", "_", resolved.name) + "_" + hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
    name = f"{_PLUGIN_PACKAGE}.{tag}"
    if _PLUGIN_PACKAGE not in sys.modules:
        root = types.ModuleType(_PLUGIN_PACKAGE)
        root.__path__ = []
        sys.modules[_PLUGIN_PACKAGE] = root
    if name not in sys.modules:
        package = types.ModuleType(name)
        package.__path__ = [str(resolved)]
        sys.modules[name] = package
    if str(resolved) not in sys.path:
        sys.path.append(str(resolved))  # ``import _common`` from a plugin, too
    return name


def _is_builtin_folder(folder: Path) -> bool:
    package = sys.modules.get(BUILTIN_PACKAGE)
    if package is None:
        with contextlib.suppress(ImportError):
            package = importlib.import_module(BUILTIN_PACKAGE)
    paths = getattr(package, "__path__", []) if package is not None else []
    return any(Path(p).resolve() == folder.resolve() for p in paths)


def _import_plugin(module_name: str, path: Path) -> None:
    """Import (or, after the registry was cleared, re-run) one plugin module; a failure names its file."""
    try:
        module = sys.modules.get(module_name)
        if module is None:
            importlib.import_module(module_name)
        elif not any(spec.source == getattr(module, "__file__", None) for spec in _TASKS.values()):
            importlib.reload(module)
    except RegistryError:
        raise
    except Exception as exc:  # a broken plugin must name its file
        sys.modules.pop(module_name, None)
        raise RegistryError(f"Task plugin {path} failed to import: {type(exc).__name__}: {exc}") from exc


def load_plugins(folders: Sequence[Path] = (), entry_points: bool = True) -> dict[str, TaskSpec]:
    """Import every ``*.py`` in ``folders`` (sorted; ``_*.py`` are helpers, not plugins) and every
    ``coca_bench.tasks`` entry point. The built-in folder loads as ``coca_bench.builtin_tasks``, others as packages
    of their own, so a module imported twice (by the loader and by a plugin reusing it) runs once."""
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise RegistryError(f"Plugin folder {folder} does not exist; pass an existing directory to --plugins.")
        package = BUILTIN_PACKAGE if _is_builtin_folder(folder) else _plugin_package(folder)
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_"):
                _import_plugin(f"{package}.{path.stem}", path)
    if entry_points:
        from importlib.metadata import entry_points as _eps

        for ep in _eps(group="coca_bench.tasks"):
            try:
                ep.load()
            except Exception as exc:
                raise RegistryError(
                    f"Task plugin entry point {ep.name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}"
                ) from exc
    if _PENDING_VARIANTS:
        base, source, changes = _PENDING_VARIANTS[0]
        raise RegistryError(
            f"{source} declares {changes['name']!r} as a variant of {base!r}, which no loaded plugin registers; "
            "check the name with `run_suite.py --tasks list`."
        )
    return dict(_TASKS)


@dataclasses.dataclass(frozen=True)
class GroupAverage:
    """A summary column: the mean of ``metric`` over every registered task of ``group`` (the paper's "Avg" over
    ImageNet and its robustness variants), defined for a checkpoint only when every one of them has a value."""

    group: str
    metric: str
    source: str

    @property
    def column(self) -> str:
        return f"{self.group}/avg_{self.metric}"

    def members(self) -> list[str]:
        return [name for name, spec in _TASKS.items() if self.group in spec.groups]


def group_average(group: str, metric: str) -> GroupAverage:
    """Declare that the summaries add the mean of ``metric`` over the tasks of ``group``."""
    declared = GroupAverage(group, metric, _caller_file(1))
    previous = _GROUP_AVERAGES.get(group)
    if previous is not None and previous.source != declared.source:
        raise RegistryError(f"Group {group!r} has an average declared twice: in {previous.source} and in {declared.source}.")  # fmt: skip
    _GROUP_AVERAGES[group] = declared
    return declared


def group_averages() -> list[GroupAverage]:
    return list(_GROUP_AVERAGES.values())


def all_tasks() -> dict[str, TaskSpec]:
    return dict(_TASKS)


def get_task(name: str) -> TaskSpec:
    try:
        return _TASKS[name]
    except KeyError:
        raise RegistryError(
            f"Unknown task {name!r}; run `run_suite.py --tasks list` to see the registered tasks."
        ) from None


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
    _PENDING_VARIANTS.clear()
    _GROUP_AVERAGES.clear()


__all__ = [
    "AGGREGATIONS",
    "GroupAverage",
    "MetricSpec",
    "RecordsRead",
    "SampleView",
    "RegistryError",
    "Skip",
    "TaskContext",
    "TaskResult",
    "TaskInputs",
    "TaskSpec",
    "aggregate_metrics",
    "all_tasks",
    "get_task",
    "group_average",
    "group_averages",
    "load_plugins",
    "mean_of_field",
    "read_records",
    "register_task",
    "select_tasks",
    "variant",
]
