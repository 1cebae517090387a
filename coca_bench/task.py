"""The task contract: what a task declares (:class:`TaskSpec`, :class:`MetricSpec`, :class:`SampleView`), what it
receives (:class:`TaskContext`) and returns (:class:`TaskResult`), and how a result is checked against its
declarations before it is stored.

Why a module of its own: the contract changes with what a task can say, the registry (:mod:`coca_bench.registry`)
with how tasks are found and loaded. No torch here: ``--tasks list`` and ``describe`` stay instant.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from coca_bench.errors import CocaBenchError
from coca_bench.params import Param, resolve_params

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

    def checked_metrics(
        self, result: TaskResult, params: Mapping[str, Any], limit: int | None
    ) -> tuple[dict[str, float], dict[str, str]]:
        """The result's metrics, checked against the declarations, and the ones that could not be checked (why).

        A metric the task leaves out is computed from its declaration; a returned one is kept only if its
        declaration, recomputed from the returned samples, agrees with it: the comparison's intervals are computed
        from those samples, and an interval about another number is worse than none. A ``task`` metric that the
        aggregate does not compute from samples (METEOR runs a Java scorer over the whole corpus) is kept, and
        listed as unchecked. A limited run can never be stored with more samples than the limit.
        """
        where = f"Task {self.name!r} ({self.source})"
        if limit is not None and len(result.samples) > limit:
            raise RegistryError(
                f"{where} returned {len(result.samples)} samples under --limit {limit}; read the evaluated records "
                "through ctx.load(...), which applies the limit."
            )
        undeclared = sorted(set(result.metrics) - {m.name for m in self.metrics})
        if undeclared:
            raise RegistryError(
                f"{where} returned metric(s) {undeclared} that it does not declare; add them to "
                "register_task(metrics=...) so their direction and aggregation are known."
            )
        returned: dict[str, float] = {}
        for name, raw in result.metrics.items():
            try:
                returned[name] = float(raw)
            except (TypeError, ValueError):
                raise RegistryError(f"{where} returned metric {name!r} = {raw!r}, which is not a number.") from None
        recomputed = self.recompute(result.samples, params) if result.samples else {}
        metrics: dict[str, float] = {}
        unchecked: dict[str, str] = {}
        for spec in self.metrics:
            if spec.name not in returned:
                if spec.name in recomputed:
                    metrics[spec.name] = recomputed[spec.name]
                continue
            metrics[spec.name] = value = returned[spec.name]
            if spec.name not in recomputed:
                unchecked[spec.name] = (
                    "no per-sample records to recompute it from"
                    if not result.samples
                    else "the task's aggregate does not compute it from the per-sample records, so comparison keeps "
                    "the task's value and computes no interval for it"
                )
            elif not _agree(value, recomputed[spec.name]):
                how = (
                    f"the mean of the samples' {spec.name!r} field"
                    if spec.aggregation == "mean"
                    else "the task's aggregate over the returned samples"
                )
                raise RegistryError(
                    f"{where} returned {spec.name}={value!r}, but {how} gives {recomputed[spec.name]!r} (tolerance "
                    f"{METRIC_TOLERANCE:g}, relative); return samples that reproduce the metric, or leave the metric "
                    "out for the runner to compute."
                )
        return metrics, unchecked


METRIC_TOLERANCE = 1e-6  # relative (absolute below 1): summation order only; any real disagreement is far larger


def _agree(returned: float, expected: float) -> bool:
    if math.isnan(expected) or math.isnan(returned):
        return math.isnan(expected) and math.isnan(returned)
    return abs(expected - returned) <= METRIC_TOLERANCE * max(1.0, abs(expected))


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


__all__ = [
    "AGGREGATIONS",
    "MetricSpec",
    "RecordsRead",
    "RegistryError",
    "SampleView",
    "Skip",
    "TaskContext",
    "TaskInputs",
    "TaskResult",
    "TaskSpec",
    "aggregate_metrics",
    "mean_of_field",
    "read_records",
]
