"""Task registry: the contract between the runner and task plugins.

A task plugin is a module (a file in ``tasks/``, a folder given with ``--plugins``,
or a module named by the ``coca_bench.tasks`` entry-point group) that calls
:func:`register_task`. The registry must stay importable without torch, so that
``--tasks list`` is instant; plugins keep heavy imports out of module level and
reach the model only through :class:`TaskContext`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import math
import re
import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from coca_bench.errors import CocaBenchError
from coca_bench.params import Param, declare_params, resolve_params

if TYPE_CHECKING:  # typed seam without importing torch: ``--tasks list`` must stay instant
    from coca_bench.data.records import RecordSet
    from coca_bench.features import FeatureExtractor
    from coca_bench.model import CocaModel
    from coca_bench.settings import RunSettings


class RegistryError(CocaBenchError, ValueError):
    """A plugin could not be loaded or registered, or a task broke the contract."""


AGGREGATIONS = ("mean", "task")


@dataclass(frozen=True)
class MetricSpec:
    """A metric and how it aggregates, so that comparison never guesses which fields are metrics.

    ``aggregation="mean"``: the metric is the mean of the per-sample field of the same name (``acc1``: 0 or 1 per
    sample); the runner computes it when the task does not, and checks it when the task does.
    ``aggregation="task"``: the task's ``aggregate(samples, params)`` computes it (mean per-class recall, corpus
    CIDEr, recall@K over images with several captions); comparison recomputes it on every bootstrap resample.
    """

    name: str
    higher_is_better: bool = True
    aggregation: str = "mean"
    description: str = ""

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise RegistryError(
                f"Metric {self.name!r} has aggregation={self.aggregation!r}; use one of {list(AGGREGATIONS)}."
            )


@dataclass
class Skip:
    """A sample that could not be read; recorded in the results instead of being scored."""

    sample_id: str
    reason: str


@dataclass
class TaskResult:
    """What a task returns: metrics plus per-sample records.

    ``samples`` carry an ``"id"`` and, for every metric declared with ``aggregation="mean"``, a field of the same
    name. Metrics the task leaves out are computed by the runner from the declarations; the ones it returns are
    checked against them. What the task read, the split and skipped samples are collected by the runner (through
    :meth:`TaskContext.load` and the feature cache); ``split`` and ``skipped`` here add to what it collected.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    extra_config: dict[str, Any] = field(default_factory=dict)
    split: str = ""
    skipped: list[Skip] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. collapsed embeddings: kept in the record, printed
    not_computed: dict[str, str] = field(default_factory=dict)  # declared metric -> why it has no value (SPICE)


@dataclass
class TaskInputs:
    """What a task read, gathered by :meth:`TaskContext.load`: the record sets (the dataset fingerprint is computed
    over every file they name), their annotation files and the evaluated splits."""

    record_sets: list[RecordSet[Any]] = field(default_factory=list)
    evaluated_sets: list[RecordSet[Any]] = field(default_factory=list)  # before --limit: the report shows from them
    annotation_files: list[Path] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    limited: bool = False


class RecordsRead(BaseException):
    """Raised in the read pass when a task first reaches for the model: everything it reads has been read.

    A ``BaseException``, so that a task's own ``except Exception`` cannot swallow it.
    """


R = TypeVar("R", bound="RecordSet[Any]")


class TaskContext:
    """Everything a task may use. Built by the runner; tasks never build models or write files.

    The runner calls a task twice when it may reuse a stored result: first in a *read pass*, where ``model`` and
    ``features`` are not there and reaching for either ends the pass, so that the result key covers every file the
    task's records name before any model is loaded; then, if no stored result has that key, for real. So a task
    loads all its records (:meth:`load`) before it touches the model; loading more afterwards is refused.
    """

    def __init__(
        self,
        task: TaskSpec,
        dataset_dir: Path,
        data_root: Path,
        settings: RunSettings,
        model: CocaModel | None = None,
        features: FeatureExtractor | None = None,
    ) -> None:
        self.task = task
        self.dataset_dir = dataset_dir  # data_root / the task's dataset folder
        self.data_root = data_root
        self.settings = settings
        self.inputs = TaskInputs()
        self._model = model
        self._features = features
        self._model_reached = False

    @classmethod
    def read_pass(cls, task: TaskSpec, dataset_dir: Path, data_root: Path, settings: RunSettings) -> TaskContext:
        """A context with no model: the task runs until it reaches for one (:class:`RecordsRead`)."""
        return cls(task, dataset_dir, data_root, settings)

    @property
    def model(self) -> CocaModel:
        return self._reach(self._model)

    @property
    def features(self) -> FeatureExtractor:
        return self._reach(self._features)

    def _reach(self, handle: Any) -> Any:
        if handle is None:
            raise RecordsRead
        self._model_reached = True
        return handle

    def load(self, records: R, *, evaluated: bool = True) -> R:
        """Register a record set the task reads: every file it names (media, annotation and class-list files) goes
        into the dataset fingerprint and, for the evaluated split, ``--limit`` is applied here. Pass
        ``evaluated=False`` for training data, which a limit never shrinks."""
        if self._model_reached:
            raise RegistryError(
                f"Task {self.task.name!r} ({self.task.source}) loaded the {records.split!r} records after using the "
                "model; load every record set with ctx.load(...) before the first ctx.features or ctx.model, so "
                "that the result key covers them."
            )
        self.inputs.record_sets.append(records)
        for path in records.annotation_files:
            if Path(path) not in self.inputs.annotation_files:
                self.inputs.annotation_files.append(Path(path))
        if not evaluated:
            return records
        self.inputs.evaluated_sets.append(records)
        if records.split not in self.inputs.splits:
            self.inputs.splits.append(records.split)
        self.inputs.limited = True
        return records.head(self.settings.limit)

    # Shorthands for the settings a task reads most.
    @property
    def device(self) -> str:
        return self.settings.device

    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def limit(self) -> int | None:
        return self.settings.limit

    @property
    def batch_size(self) -> int:
        return self.settings.batch_size


def read_records(task: TaskSpec, data_root: Path, params: Mapping[str, Any], settings: RunSettings) -> TaskInputs:
    """What the task reads with these parameters: it runs up to its first use of the model (no model is needed).

    The runner keys results on it; the report shows samples from it, so neither keeps a second list of what a task
    reads.
    """
    context = TaskContext.read_pass(task, Path(data_root) / task.dataset_folder(params), Path(data_root), settings)
    with contextlib.suppress(RecordsRead):
        task.run(context, dict(params))
    return context.inputs


VIEW_KINDS = ("classification", "retrieval", "caption", "answer")


@dataclass(frozen=True)
class SampleView:
    """How the report shows a task's per-sample records, declared by the task (no task is known by name).

    ``kind``: ``classification`` (records with ``label``/``pred``), ``retrieval`` (``top5_texts`` and a rank field),
    ``caption`` (``caption``) or ``answer`` (``answer``, ``accuracy``). The media of a record is the
    ``media_field`` of the evaluated item whose ``id_field`` equals the record's ``id``; ``video`` shows a strip of
    its recorded ``frame_indices``; ``rank_field`` names a retrieval record's rank.
    """

    kind: str
    video: bool = False
    id_field: str = "id"
    media_field: str = "path"
    rank_field: str = ""

    def __post_init__(self) -> None:
        if self.kind not in VIEW_KINDS:
            raise RegistryError(f"SampleView kind {self.kind!r} is not one of {list(VIEW_KINDS)}.")


TaskFn = Callable[[TaskContext, dict[str, Any]], TaskResult]
AggregateFn = Callable[[Sequence[Mapping[str, Any]], dict[str, Any]], dict[str, float]]
KeyMaterialFn = Callable[[dict[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    run: TaskFn
    groups: tuple[str, ...]
    dataset: str
    metrics: tuple[MetricSpec, ...]
    param_specs: Mapping[str, Param] = field(default_factory=dict)
    description: str = ""
    version: int = 1
    aggregate: AggregateFn | None = None
    key_material: KeyMaterialFn | None = None
    source: str = ""
    variant_of: str = ""
    view: SampleView | None = None

    @property
    def params(self) -> dict[str, Any]:
        """The parameters' defaults."""
        return {name: param.default for name, param in self.param_specs.items()}

    def resolve_params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults with ``overrides`` applied, each checked against its declaration (ParamError otherwise)."""
        return resolve_params(self.name, self.param_specs, dict(overrides or {}))

    def metric(self, name: str) -> MetricSpec | None:
        return next((m for m in self.metrics if m.name == name), None)

    def dataset_folder(self, params: Mapping[str, Any]) -> str:
        """The dataset folder under the data root: a ``dataset`` parameter, when the task has one, else its own."""
        return str(params.get("dataset") or self.dataset)

    def recompute(self, samples: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> dict[str, float]:
        """Every declared metric from per-sample records: the runner's check and the bootstrap's resample."""
        return aggregate_metrics(self.metrics, self.aggregate, samples, params)


def mean_of_field(samples: Sequence[Mapping[str, Any]], name: str) -> float:
    """Mean of a per-sample field, leaving out records where it is absent or null; NaN when none has it."""
    values = [float(s[name]) for s in samples if s.get(name) is not None]
    return sum(values) / len(values) if values else math.nan


def aggregate_metrics(
    metrics: Sequence[MetricSpec],
    aggregate: AggregateFn | None,
    samples: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
) -> dict[str, float]:
    """Declared metrics from per-sample records: means of their fields, the rest through ``aggregate``."""
    out = {m.name: mean_of_field(samples, m.name) for m in metrics if m.aggregation == "mean"}
    if aggregate is not None and any(m.aggregation == "task" for m in metrics):
        computed = aggregate(samples, dict(params))
        out.update({m.name: float(computed[m.name]) for m in metrics if m.aggregation == "task" and m.name in computed})
    return out


_TASKS: dict[str, TaskSpec] = {}
_PENDING_VARIANTS: list[tuple[str, str, dict[str, Any]]] = []  # (base, source, changes) until the base registers
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


__all__ = [
    "AGGREGATIONS",
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
    "load_plugins",
    "mean_of_field",
    "read_records",
    "register_task",
    "select_tasks",
    "variant",
]
