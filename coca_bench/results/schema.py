"""The record of one (checkpoint, task) run: what ``<task>.json`` holds, and when two records compare like for like.

This module imports no torch: versions come from package metadata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from coca_bench.fileio import sha256_file, to_json_value
from coca_bench.fingerprints import git_commit, package_versions
from coca_bench.registry import Skip, TaskSpec

SCHEMA_VERSION: int = 2


@dataclass(frozen=True)
class CheckpointInfo:
    """Which weights produced a result; ``sha256`` is what ties results to weights, ``name`` only labels them."""

    name: str
    spec: str
    sha256: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "spec": self.spec, "sha256": self.sha256}


@dataclass(frozen=True)
class RunRecordInputs:
    """What the runner knows about one run besides the task's own result."""

    key: str
    checkpoint: CheckpointInfo
    dataset_dir: Path
    dataset_fingerprint: str
    annotation_files: list[Path]
    splits: list[str]
    params: Mapping[str, Any]
    key_material: Mapping[str, Any]
    run: Mapping[str, Any]  # settings, device, timing, argv, fingerprints, cache stats
    data_root: Path | None = None  # the --data-root the dataset folder lies in (the report reads it again)
    files_read: int = 0  # files named by the loaded records (media, annotation and class lists): the fingerprint's
    unchecked_metrics: Mapping[str, str] = field(default_factory=dict)  # returned metric -> why it was not recomputed


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO 8601 UTC with a trailing ``Z``; the form used for ``run.started_at``/``finished_at``."""
    moment = moment or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        raise ValueError("utc_timestamp needs a timezone-aware datetime; use datetime.now(timezone.utc).")
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _relative_or_absolute(path: Path, root: Path) -> str:
    """Relative to the dataset folder; a file shipped in the package (a class list) as ``coca_bench/...``."""
    from coca_bench.fingerprints import PACKAGE_ROOT

    resolved = Path(path).resolve()
    for base, prefix in ((root.resolve(), ""), (PACKAGE_ROOT, "coca_bench/")):
        if resolved.is_relative_to(base):
            return prefix + resolved.relative_to(base).as_posix()
    return str(resolved)


def _source_sha256(source: str) -> str | None:
    return sha256_file(source) if source and Path(source).is_file() else None


def build_record(
    task: TaskSpec,
    inputs: RunRecordInputs,
    metrics: Mapping[str, float],
    samples_count: int,
    extra_config: Mapping[str, Any],
    skipped: list[Skip],
    warnings: Sequence[str] = (),
    not_computed: Mapping[str, str] | None = None,
) -> dict:
    """The JSON record of one (checkpoint, task) run: metrics plus everything needed to reproduce them."""
    run = {
        k: utc_timestamp(v) if isinstance(v, datetime) else v for k, v in inputs.run.items()
    }  # timestamps as ISO text
    return {
        "schema_version": SCHEMA_VERSION,
        "key": inputs.key,
        "task": {
            "name": task.name,
            "version": task.version,
            "groups": list(task.groups),
            "description": task.description,
            "source": task.source,
            "source_sha256": _source_sha256(task.source),
            "metrics": [
                {"name": m.name, "higher_is_better": m.higher_is_better, "aggregation": m.aggregation}
                for m in task.metrics
            ],
        },
        "checkpoint": inputs.checkpoint.as_dict(),
        "metrics": {m.name: float(metrics[m.name]) for m in task.metrics if m.name in metrics},
        "higher_is_better": {m.name: m.higher_is_better for m in task.metrics if m.name in metrics},
        "num_samples": samples_count,
        "dataset": {
            "name": inputs.dataset_dir.name,
            "root": str(inputs.dataset_dir),
            "data_root": None if inputs.data_root is None else str(inputs.data_root),
            "split": ",".join(inputs.splits),
            "fingerprint": inputs.dataset_fingerprint,
            "files_read": inputs.files_read,
            "annotation_files": [_relative_or_absolute(p, inputs.dataset_dir) for p in inputs.annotation_files],
        },
        "config": {
            "params": to_json_value(dict(inputs.params), where=f"task {task.name!r} parameters"),
            "key_material": to_json_value(dict(inputs.key_material), where=f"task {task.name!r} key_material"),
            "extra": to_json_value(dict(extra_config), where=f"task {task.name!r} extra_config"),
        },
        "run": to_json_value(run, where="run"),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "skipped": [{"id": s.sample_id, "reason": s.reason} for s in skipped],
        "warnings": list(warnings),
        "not_computed": dict(not_computed or {}),
        "unchecked_metrics": dict(inputs.unchecked_metrics),
    }


def declared_metrics(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The metric declarations stored in a record: name, higher_is_better, aggregation."""
    return [m for m in (record.get("task") or {}).get("metrics") or [] if isinstance(m, Mapping)]


def _get(record: Mapping[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


COMPARABLE_FIELDS = (
    "task.version",
    "dataset.fingerprint",
    "dataset.split",
    "run.settings.precision",
    "run.settings.limit",
    "run.settings.seed",
    "run.settings.strict",
)


def comparability_differences(baseline: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """What, besides the checkpoint, differs between two records of one task (empty: like for like)."""
    differences = [f for f in COMPARABLE_FIELDS if _get(baseline, f) != _get(other, f)]
    for section in ("params", "key_material"):  # not "extra": a probe's chosen strength differs by design
        a, b = _get(baseline, f"config.{section}") or {}, _get(other, f"config.{section}") or {}
        differences += [f"config.{section}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return differences


_NOT_RECORDED = "not recorded"
_FINGERPRINT_CHARS = 12  # enough to tell two fingerprints apart at a glance


def _version_text(versions: Mapping[str, Any], library: str) -> str:
    if library not in versions:
        return _NOT_RECORDED
    return "not installed" if versions[library] is None else str(versions[library])


def provenance_differences(baseline: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """The code and library versions that differ between two records, each as ``<baseline's> → <other's>``.

    A new library or suite version can move a number as much as new weights can, so a delta across one is not the
    checkpoint's alone. Compared: each entry of ``versions`` and ``run.code_fingerprint``. Not compared: the git
    commit (a commit that touches only docs changes it, the code fingerprint says whether the code changed), and
    what cannot change a number (timing, argv, the checkpoint's name). The code fingerprint covers the library
    versions too, so with versions changed a new fingerprint does not show that the code changed as well.
    """
    versions_a, versions_b = baseline.get("versions") or {}, other.get("versions") or {}
    if bool(versions_a) != bool(versions_b):
        changed = [f"library versions not recorded for {'the baseline' if versions_b else 'this run'}"]
    else:
        changed = [
            f"{library} {_version_text(versions_a, library)} → {_version_text(versions_b, library)}"
            for library in sorted(set(versions_a) | set(versions_b))
            if _version_text(versions_a, library) != _version_text(versions_b, library)
        ]
    code_a = (baseline.get("run") or {}).get("code_fingerprint")
    code_b = (other.get("run") or {}).get("code_fingerprint")
    if code_a == code_b:
        return changed
    short_a, short_b = (str(code)[:_FINGERPRINT_CHARS] if code else _NOT_RECORDED for code in (code_a, code_b))
    fingerprints = f"code fingerprint {short_a} → {short_b}"
    if changed:
        return [*changed, f"{fingerprints}, which covers the versions too: the suite code may or may not differ"]
    return [f"suite code differs ({fingerprints})" if code_a and code_b else fingerprints]


__all__ = [
    "COMPARABLE_FIELDS",
    "SCHEMA_VERSION",
    "CheckpointInfo",
    "RunRecordInputs",
    "build_record",
    "comparability_differences",
    "declared_metrics",
    "provenance_differences",
    "utc_timestamp",
]
