"""The runner: checkpoints x tasks -> stored results, reusing whatever is already done.

It is the only place that knows about output folders, result reuse, the feature cache and provenance, and the
one that carries the bookkeeping every task would otherwise repeat: it applies ``--limit`` (through
:meth:`TaskContext.load`), fingerprints every file the loaded records name, collects skipped samples, computes the
metrics a task leaves to its declarations and checks the ones it returns. Before a task runs, a read pass (the task
run up to its first use of the model) gives the result key, so a stored result is reused only when the files the
readers name now are those it was computed from. Every finished task is written at once (and the summary
refreshed), so an interrupted or failing run keeps everything finished before it.

This module imports no torch at module level: the CLI uses :func:`load_task_registry` for ``--tasks list``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from coca_bench import distributed
from coca_bench.cache import feature_cache_dir
from coca_bench.errors import CocaBenchError
from coca_bench.fileio import hash_every_file_afresh, to_json_value
from coca_bench.fingerprints import DatasetFingerprint, records_fingerprint, result_key, suite_code_fingerprint
from coca_bench.hardware import cpu_capabilities, warn_if_bf16_is_slow
from coca_bench.registry import (
    RegistryError,
    Skip,
    TaskContext,
    TaskResult,
    TaskSpec,
    all_tasks,
    load_plugins,
    read_records,
    select_tasks,
)
from coca_bench.results import CheckpointInfo, ResultStore, RunRecordInputs, build_record, write_summary
from coca_bench.settings import RunSettings

log = logging.getLogger("coca_bench.runner")

ModelLoader = Callable[[str, str], Any]  # (spec, device) -> model handle
_CHECKPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class RunError(CocaBenchError, ValueError):
    """A run cannot start or go on because of its inputs (configuration, checkpoint, output folder)."""


@dataclass
class RunConfig:
    """What to run and where; ``settings`` says how. The CLI fills it from its arguments."""

    tasks: str = "all"
    checkpoints: list[str] = field(default_factory=list)  # specs, each optionally NAME=SPEC; empty: bundled defaults
    data_root: Path | None = None  # None: the bundled mini datasets
    output: Path = Path("results")
    plugins: list[Path] = field(default_factory=list)
    params: list[str] = field(default_factory=list)  # --param KEY=VALUE / TASK.KEY=VALUE, parsed against the tasks
    settings: RunSettings = field(default_factory=RunSettings)
    argv: list[str] = field(default_factory=list)  # recorded in results, for provenance


# --------------------------------------------------------------------------- plugins


def builtin_plugin_dirs() -> list[Path]:
    """The built-in tasks: the top-level ``tasks/`` folder, installed as the package ``coca_bench.builtin_tasks``.

    A wheel carries them inside the package; an editable install maps the package onto the checkout's ``tasks/``.
    """
    spec = importlib.util.find_spec("coca_bench.builtin_tasks")
    if spec is not None and spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations if Path(p).is_dir()]
    source_root = Path(__file__).resolve().parent.parent  # a checkout used without installing
    tasks_dir = source_root / "tasks"
    return [tasks_dir] if tasks_dir.is_dir() and (source_root / "pyproject.toml").is_file() else []


def load_task_registry(plugin_dirs: Sequence[Path] = ()) -> dict[str, TaskSpec]:
    """Built-in tasks, then ``--plugins`` folders, then ``coca_bench.tasks`` entry points."""
    return load_plugins([*builtin_plugin_dirs(), *map(Path, plugin_dirs)])


# --------------------------------------------------------------------------- parameters from the command line


def parse_param_value(text: str) -> Any:
    """JSON when it parses (``3``, ``0.5``, ``true``, ``[1, 2]``, ``"x"``), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_task_params(arguments: Sequence[str], tasks: Sequence[TaskSpec]) -> dict[str, dict[str, Any]]:
    """``--param KEY=VALUE`` (every selected task with KEY) and ``--param TASK.KEY=VALUE`` (one task)."""
    by_name = {t.name: t for t in tasks}
    overrides: dict[str, dict[str, Any]] = {t.name: {} for t in tasks}
    for argument in arguments:
        target, sep, raw = argument.partition("=")
        if not sep or not target:
            raise RunError(f"--param {argument!r} is not KEY=VALUE or TASK.KEY=VALUE.")
        value = parse_param_value(raw)
        prefix, dot, key = target.partition(".")
        if dot and prefix in all_tasks():
            if prefix not in by_name:
                raise RunError(f"--param {argument!r} names task {prefix!r}, which --tasks did not select.")
            task = by_name[prefix]
            if key not in task.params:
                raise RunError(
                    f"--param {argument!r}: task {prefix!r} has no parameter {key!r}; its parameters are "
                    f"{sorted(task.params)}."
                )
            overrides[prefix][key] = value
            continue
        matched = [t for t in tasks if target in t.params]
        if not matched:
            listing = "; ".join(f"{t.name}: {sorted(t.params)}" for t in tasks)
            raise RunError(f"--param {argument!r}: no selected task has a parameter {target!r} ({listing}).")
        for task in matched:
            overrides[task.name][target] = value
    return overrides


# --------------------------------------------------------------------------- checkpoints, device, precision


def parse_checkpoint_arg(text: str) -> tuple[str | None, str]:
    """``NAME=SPEC`` -> (NAME, SPEC); a bare SPEC -> (None, SPEC), named later by the model.

    A spec that is itself an existing path containing '=' is taken whole.
    """
    name, sep, spec = text.partition("=")
    if sep and not Path(text).exists():
        if not _CHECKPOINT_NAME.match(name) or not spec:
            raise RunError(
                f"--checkpoint {text!r}: in NAME=SPEC the name must be letters, digits, '.', '_', '+' or '-' "
                "and the spec must not be empty."
            )
        return name, spec
    return None, text


def split_checkpoint_list(text: str) -> list[str]:
    """``--checkpoint a,b=SPEC`` -> ``["a", "b=SPEC"]``, as ``--tasks`` takes a comma list; a text that is an existing
    path (or NAME=an existing path) containing a comma is one checkpoint."""
    _, sep, spec = text.partition("=")
    if "," not in text or Path(text).exists() or (sep and Path(spec).exists()):
        return [text]
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise RunError(f"--checkpoint {text!r} has an empty entry; give one SPEC or NAME=SPEC between commas.")
    return parts


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise RunError(f"--device {device!r} is not a device torch knows; use auto, cpu, cuda or cuda:N.") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"--device {device} was asked for but CUDA is not available here; use --device cpu.")
    return device


def check_precision(precision: str, device: str) -> None:
    """fp16 on CPU is refused, not silently downgraded: a result labelled fp16 must have been computed in fp16."""
    import torch

    device_type = torch.device(device).type
    if precision == "fp16" and device_type == "cpu":
        raise RunError("--precision fp16 needs a CUDA device; on CPU use --precision bf16 or fp32.")
    if precision == "bf16" and device_type == "cuda" and not torch.cuda.is_bf16_supported():
        raise RunError("--precision bf16 is not supported by this GPU; use --precision fp16 or fp32.")
    if precision == "bf16" and device_type == "cpu":
        warn_if_bf16_is_slow("--precision bf16")  # still bf16, as asked and as labelled: only slower here


def seed_everything(seed: int) -> None:
    """Each task starts from the same random state, whatever ran before it."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- the run


class _CheckpointRun:
    """One checkpoint and what every one of its tasks shares. The network is built only when a task must run:
    a result key needs the checkpoint's identity (weights sha256, model fingerprint), which a native checkpoint's
    files tell without torch (:func:`coca_bench.model.catalog.checkpoint_identity`)."""

    def __init__(self, suite: _Suite, entry: str) -> None:
        self.suite = suite
        self.entry = entry
        name, self.spec = parse_checkpoint_arg(entry)
        self.model: Any = None
        self.features: Any = None
        identity = suite.known_identity(self.spec)
        if identity is None:
            self.load()
            identity = self.model
        self.fingerprint: str = identity.fingerprint
        self.info = CheckpointInfo(name=name or identity.name, spec=self.spec, sha256=identity.weights_sha256)

    def load(self) -> None:
        """Build the model and its feature extractor (once)."""
        if self.model is not None:
            return
        from coca_bench.features import FeatureExtractor

        settings = self.suite.device_settings()
        log.info("loading checkpoint %s", self.entry)
        try:
            model = self.suite.load_model(self.spec, settings.device)
        except (OSError, ValueError, KeyError) as exc:  # bad path, unknown name, malformed file: one clear line
            raise RunError(f"Cannot load checkpoint {self.spec!r}: {exc}") from exc
        known = getattr(self, "info", None)
        if known is not None and (model.weights_sha256 != known.sha256 or model.fingerprint != self.fingerprint):
            raise RunError(
                f"Checkpoint {self.spec!r} changed while this run was using it (its files no longer match the "
                "checksum taken at the start); rerun once it is no longer being written."
            )
        extractor = FeatureExtractor
        if distributed.world_size() > 1:
            from coca_bench.distributed_features import DistributedFeatureExtractor as extractor
        self.model = model
        self.features = extractor(model, settings.cache_dir, settings, chunk_size=_chunk_size())

    def release(self) -> None:
        if self.model is None:
            return
        import torch

        self.model = self.features = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class _Suite:
    """One invocation: settings resolved once, the store, and the fingerprints shared across checkpoints.

    The device is resolved (which imports torch) only when a model is first built: a rerun whose results are all
    stored needs none.
    """

    def __init__(self, config: RunConfig, load_model: ModelLoader | None) -> None:
        self.config = config
        self.load_model = load_model or _load_bundled_model
        self._identity_from_files = load_model is None  # a custom loader's specs mean what it says they mean
        settings = config.settings.validated()
        cache_dir = settings.cache_dir if settings.cache_dir is not None else feature_cache_dir()
        progress = settings.progress and distributed.is_main()  # one set of progress bars, rank 0's
        self.settings = settings.replace(cache_dir=cache_dir, progress=progress)
        self._device_resolved = False
        if settings.force:  # before any checkpoint is hashed: a forced run records only checksums it computed
            hash_every_file_afresh()
        self.store = ResultStore(config.output)
        self.data_root = Path(config.data_root) if config.data_root is not None else _default_data_root()
        if not self.data_root.is_dir():
            raise RunError(
                f"--data-root {self.data_root} is not a folder; point it at the folder holding the datasets."
            )

    def device_settings(self) -> RunSettings:
        """The settings with the device resolved and the precision checked against it."""
        if not self._device_resolved:
            device = distributed.device_for_rank(resolve_device(self.settings.device))  # torchrun: cuda:LOCAL_RANK
            check_precision(self.settings.precision, device)
            self.settings = self.settings.replace(device=device)
            self._device_resolved = True
        return self.settings

    def known_identity(self, spec: str) -> Any:
        """The checkpoint's identity from its files when that is possible (single process, bundled loader)."""
        if not self._identity_from_files or distributed.world_size() > 1:
            return None
        from coca_bench.model.catalog import checkpoint_identity

        return checkpoint_identity(spec)


def run_suite(config: RunConfig, *, load_model: ModelLoader | None = None) -> list[dict]:
    """Run (or reuse) every selected task for every checkpoint; returns the result records.

    ``load_model(spec, device)`` replaces ``coca_bench.model.load_model`` (tests, other model backends).

    Under ``torchrun`` every rank calls this; rank 0 runs the tasks and writes, the others only encode features for
    it (:mod:`coca_bench.distributed`) and return ``[]``.
    """
    config.settings.validated()  # before any plugin import or model load
    load_task_registry(config.plugins)
    tasks = select_tasks(config.tasks)
    if not tasks:
        raise RunError(f"--tasks {config.tasks!r} selects no task; run with --tasks list to see them.")
    overrides = parse_task_params(config.params, tasks)
    params = {}
    for task in tasks:
        params[task.name] = task.resolve_params(overrides[task.name])  # a bad value: ParamError, before any work
    distributed.init(config.settings.device)
    try:
        return _run_checkpoints(config, tasks, params, load_model)
    finally:
        distributed.shutdown()


def _run_checkpoints(
    config: RunConfig, tasks: list[TaskSpec], params: dict[str, dict[str, Any]], load_model: ModelLoader | None
) -> list[dict]:
    suite = _Suite(config, load_model)
    metric_order = {name: [m.name for m in spec.metrics] for name, spec in all_tasks().items()}
    checkpoints = config.checkpoints or _default_checkpoints()

    records: list[dict] = []
    seen_names: dict[str, str] = {}
    for entry in checkpoints:
        run = _CheckpointRun(suite, entry)
        if not distributed.is_main():  # a worker: encode what rank 0's tasks ask for, until it moves on
            from coca_bench.distributed_features import serve

            run.load()
            serve(run.features)
            run.release()
            continue
        try:
            if run.info.name in seen_names:
                raise RunError(
                    f"Two checkpoints are both named {run.info.name!r} ({seen_names[run.info.name]!r} and {entry!r}); "
                    "name them apart with --checkpoint NAME=SPEC."
                )
            seen_names[run.info.name] = entry
            try:
                suite.store.claim(run.info)
            except ValueError as exc:
                raise RunError(str(exc)) from None
            for task in tasks:
                records.append(_run_task(suite, task, params[task.name], run))
        finally:
            if distributed.world_size() > 1:
                from coca_bench.distributed_features import release_workers

                run.load()  # the workers loaded it: they wait for the release
                release_workers()
            write_summary(config.output, metric_order)  # once per checkpoint, and for whatever finished before an error
        run.release()
    return records


def _chunk_size() -> int:
    """Items per feature-cache chunk, the unit of resumption and of sharding across ranks (``COCA_BENCH_CHUNK_SIZE``).

    Smaller chunks spread a small dataset over many GPUs; chunks of another size are new cache entries.
    """
    from coca_bench.features import DEFAULT_CHUNK_SIZE

    text = os.environ.get("COCA_BENCH_CHUNK_SIZE", "")
    if not text:
        return DEFAULT_CHUNK_SIZE
    if not text.isdigit() or int(text) < 1:
        raise RunError(f"COCA_BENCH_CHUNK_SIZE must be a positive integer; got {text!r}.")
    return int(text)


def _default_data_root() -> Path:
    from coca_bench.data import default_data_root

    return Path(default_data_root())


def _default_checkpoints() -> list[str]:
    from coca_bench.model import DEFAULT_CHECKPOINTS

    return list(DEFAULT_CHECKPOINTS)


def _load_bundled_model(spec: str, device: str) -> Any:
    from coca_bench.model import load_model

    return load_model(spec, device=device)


def _run_task(suite: _Suite, task: TaskSpec, params: dict[str, Any], run: _CheckpointRun) -> dict:
    settings = suite.settings
    dataset_dir = suite.data_root / task.dataset_folder(params)
    where = f"{run.info.name}/{task.name}"
    key_material = dict(task.key_material(dict(params))) if task.key_material is not None else {}

    def key_for(fingerprint: DatasetFingerprint) -> str:
        return result_key(
            task_name=task.name,
            task_version=task.version,
            params=params,
            key_material=key_material,
            settings=settings.key_fields(),
            checkpoint_sha256=run.info.sha256,
            model_fingerprint=run.fingerprint,
            dataset_fingerprint=fingerprint.sha256,
            code_fingerprint=suite_code_fingerprint(task.source),
        )

    if not settings.force:
        read = read_records(task, suite.data_root, params, settings)  # no model: the task up to its first use
        reusable = None
        try:
            suite.store.load(run.info.name, task.name)  # a damaged record: said once, then recomputed
        except ValueError as exc:
            log.warning("%s It will be recomputed.", exc)
        else:
            key = key_for(records_fingerprint(read.record_sets, suite.data_root))
            reusable = suite.store.find_reusable(run.info.name, task.name, key)
        if reusable is not None:
            log.info("%s: reusing the stored result (use --force to recompute)", where)
            return reusable

    log.info("%s: running", where)
    run.load()
    settings = suite.device_settings()
    seed_everything(settings.seed)
    run.features.skipped.clear()
    context = TaskContext(task, dataset_dir, suite.data_root, settings, run.model, run.features)
    stats_before = run.features.stats.as_dict()
    by_rank_before = list(getattr(run.features, "items_encoded_by_rank", [stats_before["items_encoded"]]))
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    result = task.run(context, dict(params))
    wall_time = time.perf_counter() - clock
    if not isinstance(result, TaskResult):
        raise RegistryError(f"Task {task.name!r} ({task.source}) returned {type(result).__name__}, not a TaskResult.")
    # The samples as they will be stored (NaN -> null, tuples -> lists), so that every metric is computed and checked
    # on exactly what the comparison later recomputes from.
    try:
        result.samples = to_json_value(result.samples, "samples")
    except TypeError as exc:
        raise RegistryError(
            f"Task {task.name!r} ({task.source}) returned a sample that cannot be stored: {exc}"
        ) from None
    metrics, unchecked = task.checked_metrics(result, params, settings.limit)

    fingerprint = records_fingerprint(context.inputs.record_sets, suite.data_root)  # what this run itself read
    splits = context.inputs.splits or ([result.split] if result.split else [])
    skipped = list(run.features.skipped) + [s for s in result.skipped if s not in run.features.skipped]
    stats_after = run.features.stats.as_dict()
    by_rank = getattr(run.features, "items_encoded_by_rank", [stats_after["items_encoded"]])
    record = build_record(
        task,
        RunRecordInputs(
            key=key_for(fingerprint),
            checkpoint=run.info,
            dataset_dir=dataset_dir,
            dataset_fingerprint=fingerprint.sha256,
            annotation_files=context.inputs.annotation_files,
            splits=splits,
            params=params,
            key_material=key_material,
            run={
                "settings": settings.as_dict(),
                "started_at": started,
                "finished_at": datetime.now(timezone.utc),
                "wall_time_s": round(wall_time, 3),
                "argv": list(suite.config.argv),
                "model_fingerprint": run.fingerprint,
                "preprocess_fingerprint": run.model.preprocess_fingerprint,
                "code_fingerprint": suite_code_fingerprint(task.source),
                "feature_cache": {k: stats_after[k] - stats_before[k] for k in stats_after},
                "distributed": distributed.description([a - b for a, b in zip(by_rank, by_rank_before)]),
                "cpu": cpu_capabilities(),
            },
            data_root=suite.data_root,
            files_read=fingerprint.files,
            unchecked_metrics=unchecked,
        ),
        metrics,
        len(result.samples),
        result.extra_config,
        _unique_skips(skipped),
        result.warnings,
        result.not_computed,
    )
    suite.store.write(run.info, record, result.samples)
    log.info("%s: done in %.1fs", where, wall_time)
    return suite.store.load(run.info.name, task.name) or record


def _unique_skips(skips: Sequence[Skip]) -> list[Skip]:
    seen: dict[tuple[str, str], Skip] = {}
    for skip in skips:
        seen.setdefault((skip.sample_id, skip.reason), skip)
    return list(seen.values())


__all__ = [
    "RunConfig",
    "RunError",
    "builtin_plugin_dirs",
    "check_precision",
    "load_task_registry",
    "parse_checkpoint_arg",
    "parse_param_value",
    "parse_task_params",
    "resolve_device",
    "run_suite",
    "seed_everything",
    "split_checkpoint_list",
]
