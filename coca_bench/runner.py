"""The runner: checkpoints x tasks -> stored results, reusing whatever is already done.

It is the only place that knows about output folders, result reuse, the feature cache
and provenance. Tasks get a :class:`TaskContext` and return a ``TaskResult``; they
never write files. Every finished task is written at once (and the summary refreshed),
so an interrupted or failing run keeps everything finished before it.

This module imports no torch at module level: the CLI uses :func:`load_task_registry`
for ``--tasks list``, which must stay instant.
"""
from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from coca_bench.registry import TaskContext, TaskSpec, all_tasks, load_plugins, select_tasks
from coca_bench.results import (
    CheckpointInfo,
    build_record,
    claim_checkpoint_dir,
    find_reusable,
    fingerprint_files,
    load_task_result,
    result_key,
    write_summary,
    write_task_result,
)

log = logging.getLogger("coca_bench.runner")

PRECISIONS = ("fp32", "bf16", "fp16")
ModelLoader = Callable[[str, str], Any]  # (spec, device) -> model handle
_CHECKPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class RunError(ValueError):
    """A run cannot start or go on because of its inputs (configuration, checkpoint, output folder)."""


@dataclass
class RunConfig:
    """Everything a suite run depends on; the CLI fills it from its arguments."""

    tasks: str = "all"
    checkpoints: list[str] = field(default_factory=list)  # specs, each optionally NAME=SPEC; empty: the bundled defaults
    data_root: Path | None = None  # None: the bundled mini datasets
    output: Path = Path("results")
    plugins: list[Path] = field(default_factory=list)
    batch_size: int = 32
    num_workers: int = 2
    device: str = "auto"  # "auto": cuda if available, else cpu
    precision: str = "fp32"
    seed: int = 0
    limit: int | None = None  # first N samples of every task
    force: bool = False
    strict: bool = False
    cache_dir: Path | None = None  # None: features.default_cache_dir()
    progress: bool = True
    argv: list[str] = field(default_factory=list)  # recorded in results, for provenance

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise RunError(f"--precision {self.precision!r} is not one of {list(PRECISIONS)}.")
        if self.batch_size < 1:
            raise RunError(f"--batch-size must be at least 1; got {self.batch_size}.")
        if self.num_workers < 0:
            raise RunError(f"--num-workers must be 0 or more; got {self.num_workers}.")
        if self.limit is not None and self.limit < 1:
            raise RunError(f"--limit must be at least 1; got {self.limit}.")


# --------------------------------------------------------------------------- plugins


def builtin_plugin_dirs() -> list[Path]:
    """The repository's top-level ``tasks/`` folder, when running from a source checkout.

    An installed wheel has no ``tasks/`` next to the package; the ``pyproject.toml``
    check keeps us from importing some unrelated ``site-packages/tasks`` folder.
    """
    source_root = Path(__file__).resolve().parent.parent
    tasks_dir = source_root / "tasks"
    return [tasks_dir] if tasks_dir.is_dir() and (source_root / "pyproject.toml").is_file() else []


def load_task_registry(plugin_dirs: list[Path] | tuple[Path, ...] = ()) -> dict[str, TaskSpec]:
    """Built-in tasks, then ``--plugins`` folders, then ``coca_bench.tasks`` entry points."""
    return load_plugins([*builtin_plugin_dirs(), *map(Path, plugin_dirs)])


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
    """fp16 on CPU is refused, not silently downgraded: CPU fp16 autocast is slow and poorly
    supported, and a result labelled fp16 must have been computed in fp16. bf16 works on CPU."""
    import torch

    device_type = torch.device(device).type
    if precision == "fp16" and device_type == "cpu":
        raise RunError("--precision fp16 needs a CUDA device; on CPU use --precision bf16 or fp32.")
    if precision == "bf16" and device_type == "cuda" and not torch.cuda.is_bf16_supported():
        raise RunError("--precision bf16 is not supported by this GPU; use --precision fp16 or fp32.")


def seed_everything(seed: int) -> None:
    """Each task starts from the same random state, whatever ran before it."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- the run


@dataclass
class _CheckpointRun:
    """One loaded checkpoint and what every one of its tasks shares."""

    info: CheckpointInfo
    model: Any
    features: Any
    key_extras: dict[str, Any]


def run_suite(config: RunConfig, *, load_model: ModelLoader | None = None) -> list[dict]:
    """Run (or reuse) every selected task for every checkpoint; returns the result records.

    ``load_model(spec, device)`` replaces ``coca_bench.model.load_model`` (tests, other model backends).
    """
    config.validate()
    load_task_registry(config.plugins)
    tasks = select_tasks(config.tasks)
    if not tasks:
        raise RunError(f"--tasks {config.tasks!r} selects no task; run with --tasks list to see them.")
    metric_order = {name: [m.name for m in spec.metrics] for name, spec in all_tasks().items()}
    data_root = Path(config.data_root) if config.data_root is not None else _default_data_root()
    if not data_root.is_dir():
        raise RunError(f"--data-root {data_root} is not a folder; point it at the folder holding the datasets.")
    device = resolve_device(config.device)
    check_precision(config.precision, device)
    output = Path(config.output)
    checkpoints = config.checkpoints or _default_checkpoints()

    records: list[dict] = []
    seen_names: dict[str, str] = {}
    listings = {d: dataset_listing_fingerprint(data_root / d) for d in dict.fromkeys(t.dataset for t in tasks)}
    for entry in checkpoints:
        run = _load_checkpoint(entry, config, device, load_model or _load_bundled_model)
        if run.info.name in seen_names:
            raise RunError(
                f"Two checkpoints are both named {run.info.name!r} ({seen_names[run.info.name]!r} and {entry!r}); "
                "name them apart with --checkpoint NAME=SPEC."
            )
        seen_names[run.info.name] = entry
        try:
            claim_checkpoint_dir(output, run.info)
        except ValueError as exc:
            raise RunError(str(exc)) from None
        for task in tasks:
            records.append(_run_task(task, run, config, data_root, listings[task.dataset], device, output))
            write_summary(output, metric_order)
        _release(run)
    return records


def _default_data_root() -> Path:
    from coca_bench.data import default_data_root

    return Path(default_data_root())


def _default_checkpoints() -> list[str]:
    from coca_bench.model import DEFAULT_CHECKPOINTS

    return list(DEFAULT_CHECKPOINTS)


def _load_bundled_model(spec: str, device: str) -> Any:
    from coca_bench.model import load_model

    return load_model(spec, device=device)


def _load_checkpoint(entry: str, config: RunConfig, device: str, load_model: ModelLoader) -> _CheckpointRun:
    from coca_bench.features import FeatureExtractor, default_cache_dir

    name, spec = parse_checkpoint_arg(entry)
    log.info("loading checkpoint %s", entry)
    try:
        model = load_model(spec, device)
    except (OSError, ValueError, KeyError) as exc:  # bad path, unknown name, malformed file: one clear line
        raise RunError(f"Cannot load checkpoint {spec!r}: {exc}") from exc
    info = CheckpointInfo(name=name or model.name, spec=spec, sha256=model.weights_sha256)
    features = FeatureExtractor(
        model,
        cache_dir=config.cache_dir if config.cache_dir is not None else default_cache_dir(),
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        precision=config.precision,
        device=device,
        strict=config.strict,
        progress=config.progress,
    )
    # Besides the weights, what the stored numbers depend on: config and tokenizer (model.fingerprint),
    # preprocessing, the sample limit and the seed. A --limit run is never reused as a full one.
    key_extras = {
        "model_fingerprint": model.fingerprint,
        "preprocess_fingerprint": model.preprocess_fingerprint,
        "limit": config.limit,
        "seed": config.seed,
    }
    return _CheckpointRun(info, model, features, key_extras)


def _release(run: _CheckpointRun) -> None:
    import torch

    run.model = run.features = None
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _run_task(
    task: TaskSpec, run: _CheckpointRun, config: RunConfig, data_root: Path, listing: str, device: str, output: Path
) -> dict:
    params = task.resolve_params()
    key_params = {**params, **run.key_extras}
    dataset_dir = data_root / task.dataset
    where = f"{run.info.name}/{task.name}"

    if not config.force:
        reusable = _find_stored_result(task, key_params, run.info, dataset_dir, listing, config.precision, output)
        if reusable is not None:
            log.info("%s: reusing the stored result (use --force to recompute)", where)
            return reusable

    log.info("%s: running", where)
    seed_everything(config.seed)
    context = TaskContext(
        model=run.model,
        features=run.features,
        data_root=data_root,
        device=device,
        precision=config.precision,
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        limit=config.limit,
        seed=config.seed,
        strict=config.strict,
    )
    stats_before = run.features.stats.as_dict()
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    result = task.run(context, dict(params))
    wall_time = time.perf_counter() - clock
    finished = datetime.now(timezone.utc)

    fingerprint = dataset_fingerprint(result.annotation_files, listing)
    key = result_key(task, key_params, run.info, fingerprint, config.precision)
    stats_after = run.features.stats.as_dict()
    run_info = {
        "seed": config.seed,
        "precision": config.precision,
        "device": device,
        "batch_size": config.batch_size,
        "limit": config.limit,
        "started_at": started,
        "finished_at": finished,
        "wall_time_s": round(wall_time, 3),
        "argv": list(config.argv),
        "num_workers": config.num_workers,
        "strict": config.strict,
        "model_fingerprint": run.key_extras["model_fingerprint"],
        "preprocess_fingerprint": run.key_extras["preprocess_fingerprint"],
        "feature_cache": {k: stats_after[k] - stats_before[k] for k in stats_after},
    }
    record = build_record(
        task=task,
        params=params,
        result=result,
        checkpoint=run.info,
        key=key,
        data_root=data_root,
        dataset_fingerprint=fingerprint,
        run_info=run_info,
    )
    write_task_result(output, run.info, record, result.samples)
    log.info("%s: done in %.1fs", where, wall_time)
    return load_task_result(output, run.info.name, task.name) or record


def dataset_listing_fingerprint(dataset_dir: Path) -> str:
    """sha256 of every file's relative path and size under ``dataset_dir`` (empty if it is absent).

    For folder-layout datasets (ImageNet's ``val/<wnid>/<image>``) the listing *is* the
    annotation: adding, removing or moving an image changes the labels without touching
    any annotation file. Sizes catch re-encoded files; contents are not read (the feature
    cache hashes those itself), so this costs one ``stat`` per file.
    """
    entries: list[str] = []
    if dataset_dir.is_dir():
        for folder, subfolders, files in os.walk(dataset_dir, followlinks=True):
            subfolders.sort()
            relative = Path(folder).relative_to(dataset_dir).as_posix()
            for name in sorted(files):
                entries.append(f"{relative}/{name}\t{os.stat(os.path.join(folder, name)).st_size}")
    return hashlib.sha256("\n".join(entries).encode("utf-8")).hexdigest()


def dataset_fingerprint(annotation_files: Sequence[Path], listing: str) -> str:
    """The annotation files' contents plus the dataset folder's listing."""
    return hashlib.sha256(f"{fingerprint_files(list(annotation_files))}|{listing}".encode("utf-8")).hexdigest()


def _find_stored_result(
    task: TaskSpec,
    key_params: dict,
    ckpt: CheckpointInfo,
    dataset_dir: Path,
    listing: str,
    precision: str,
    output: Path,
) -> dict | None:
    """The stored record, if recomputing now would give the same key.

    A task names its annotation files only when it runs, so the fingerprint is rebuilt from
    the files the stored record lists plus today's folder listing: any edit to them, or to
    the parameters, the weights, the limit, seed or precision, changes the key and the task
    runs again.
    """
    try:
        stored = load_task_result(output, ckpt.name, task.name)
    except ValueError:
        return None  # unreadable record: recompute and overwrite it
    if stored is None:
        return None
    listed = (stored.get("dataset") or {}).get("annotation_files") or []
    files = [dataset_dir / name for name in listed]
    if not all(path.is_file() for path in files):
        return None
    key = result_key(task, key_params, ckpt, dataset_fingerprint(files, listing), precision)
    return find_reusable(output, ckpt.name, task.name, key)


__all__ = [
    "PRECISIONS",
    "RunConfig",
    "RunError",
    "builtin_plugin_dirs",
    "check_precision",
    "dataset_fingerprint",
    "dataset_listing_fingerprint",
    "load_task_registry",
    "parse_checkpoint_arg",
    "resolve_device",
    "run_suite",
    "seed_everything",
]
