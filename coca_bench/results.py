"""Result files: the only writer of ``OUTPUT/<checkpoint>/<task>.json`` and friends.

Layout::

    OUTPUT/summary.csv, OUTPUT/summary.md            one row per checkpoint
    OUTPUT/<checkpoint>/checkpoint.json              name, spec, sha256: claims the folder
    OUTPUT/<checkpoint>/<task>.json                  metrics + provenance (the commit marker)
    OUTPUT/<checkpoint>/<task>.samples.jsonl         per-sample records (for the bootstrap)

Every file is written atomically, so a crash leaves the previous version or
nothing, never half a file. A task's JSON is written last: a result exists only
once its samples are on disk. This module must not import torch: versions are
read from package metadata.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence

from coca_bench.registry import TaskResult, TaskSpec

SCHEMA_VERSION: int = 1

CHECKPOINT_FILE = "checkpoint.json"
SAMPLES_SUFFIX = ".samples.jsonl"
SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
RUN_INFO_KEYS = (
    "seed",
    "precision",
    "device",
    "batch_size",
    "limit",
    "started_at",
    "finished_at",
    "wall_time_s",
    "argv",
)
# Distribution names whose versions go into every record (package metadata only: never import torch).
_VERSIONED_DISTRIBUTIONS = {
    "coca_bench": "coca-bench",
    "torch": "torch",
    "torchvision": "torchvision",
    "open_clip": "open_clip_torch",
    "numpy": "numpy",
}
_SOURCE_ROOT = Path(__file__).resolve().parent.parent
_VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]*$")


@dataclass(frozen=True)
class CheckpointInfo:
    """Which weights produced a result; ``sha256`` is what ties results to weights, ``name`` only labels them."""

    name: str
    spec: str
    sha256: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "spec": self.spec, "sha256": self.sha256}


# --------------------------------------------------------------------------- JSON


def to_json_value(value: Any, where: str = "value") -> Any:
    """Plain JSON data from ``value``; NaN/inf become ``None`` so files stay valid JSON.

    Unknown objects are refused rather than ``repr``-ed: a repr may hold a memory
    address, which would make result keys unstable and files unreadable.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return sorted((to_json_value(v, where) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, Path):
        return str(value)
    if type(value).__module__ == "numpy":  # numpy scalars and arrays, without importing numpy here
        return to_json_value(value.tolist(), where)
    raise TypeError(
        f"{where} is a {type(value).__name__}, which cannot be stored in a result file; "
        "use numbers, strings, lists or dicts."
    )


def dumps_json(value: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """Strict JSON text (``allow_nan=False`` after NaN -> null), UTF-8 friendly."""
    return json.dumps(
        to_json_value(value),
        indent=indent,
        sort_keys=sort_keys,
        allow_nan=False,
        ensure_ascii=False,
        separators=(",", ": ") if indent is not None else (",", ":"),
    )


def canonical_json(value: Any) -> str:
    """The one text form used for hashing: sorted keys, no whitespace."""
    return dumps_json(value, sort_keys=True)


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _jsonl_line(row: Mapping[str, Any]) -> str:
    return dumps_json(row) + "\n"


# --------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def _atomic_file(path: Path, mode: str) -> Iterator[IO[Any]]:
    """A temp file next to ``path`` that replaces it only if the block finishes; removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        text_mode = "b" not in mode  # text: UTF-8 and "\n" untranslated, so hashes of the text match the bytes
        with open(fd, mode, encoding="utf-8" if text_mode else None, newline="" if text_mode else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with _atomic_file(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with _atomic_file(path, "wb") as handle:
        handle.write(data)


def atomic_write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with _atomic_file(path, "w") as handle:
        for row in rows:
            handle.write(_jsonl_line(row))


# --------------------------------------------------------------------------- keys and fingerprints


@lru_cache(maxsize=256)
def _file_digest(resolved: str, size: int, mtime_ns: int) -> str:
    """Content hash, cached per (path, size, mtime) so a suite run hashes a large annotation file once."""
    digest = hashlib.sha256()
    with open(resolved, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint_files(paths: Sequence[Path]) -> str:
    """sha256 over (relative name, size, content) of annotation files, independent of their order.

    Names are relative to the files' common folder, so moving a dataset to another
    root keeps its fingerprint, while renaming or editing any file changes it.
    """
    files = [Path(p) for p in paths]
    for path in files:
        if path.is_dir():
            raise ValueError(
                f"fingerprint_files got the folder {path}; pass the annotation files (labels, captions, "
                "questions) that define the dataset, not folders of images or videos."
            )
        if not path.is_file():
            raise FileNotFoundError(f"Annotation file {path} does not exist; check the dataset layout under --data.")
    if not files:
        return hashlib.sha256(b"no annotation files").hexdigest()
    resolved = [p.resolve() for p in files]
    root = Path(os.path.commonpath([str(p.parent) for p in resolved]))
    entries = []
    for path in resolved:
        stat = path.stat()
        entries.append((path.relative_to(root).as_posix(), stat.st_size, _file_digest(str(path), stat.st_size, stat.st_mtime_ns)))
    return _sha256_text(canonical_json(sorted(entries)))


def _key_material(task: TaskSpec, params: Mapping[str, Any], dataset_fingerprint: str, precision: str) -> dict:
    """Everything but the checkpoint that determines a task's numbers."""
    return {
        "schema_version": SCHEMA_VERSION,
        "task": task.name,
        "task_version": task.version,
        "dataset": task.dataset,
        "params": to_json_value(dict(params), where=f"task {task.name!r} parameters"),
        "dataset_fingerprint": dataset_fingerprint,
        "precision": precision,
    }


def result_key(
    task: TaskSpec, params: dict, checkpoint: CheckpointInfo, dataset_fingerprint: str, precision: str
) -> str:
    """Stable hash of what determines the numbers: task name+version, params (templates, prompts, limit,
    seed... whatever the runner puts there), checkpoint sha256, dataset fingerprint and precision.

    The checkpoint *name* is deliberately left out: renaming a run does not change its numbers.
    """
    material = _key_material(task, params, dataset_fingerprint, precision)
    material["checkpoint_sha256"] = checkpoint.sha256
    return _sha256_text(canonical_json(material))


# --------------------------------------------------------------------------- folders


def _checkpoint_dir(output_dir: Path, name: str) -> Path:
    if not _VALID_NAME.match(name or ""):
        raise ValueError(
            f"Checkpoint name {name!r} cannot name a results folder; use letters, digits, '.', '_', '-', '+', '=' "
            "(set it with --checkpoint NAME=SPEC)."
        )
    return Path(output_dir) / name


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc}); delete it, or rerun that task with --force to rewrite it."
        ) from None


def claim_checkpoint_dir(output_dir: Path, ckpt: CheckpointInfo) -> Path:
    """Create ``OUTPUT/<name>/checkpoint.json``; refuse a folder that holds another checkpoint's results."""
    folder = _checkpoint_dir(output_dir, ckpt.name)
    marker = folder / CHECKPOINT_FILE
    owner_sha: str | None = None
    if marker.exists():
        owner_sha = _read_json(marker).get("sha256")
    elif folder.is_dir():  # results without a marker (copied in by hand): trust the records themselves
        owner_sha = next(
            (r["checkpoint"].get("sha256") for r in _records_in(folder) if isinstance(r.get("checkpoint"), dict)),
            None,
        )
    if owner_sha is not None and owner_sha != ckpt.sha256:
        raise ValueError(
            f"{folder} holds results of another checkpoint (sha256 {owner_sha[:12]}..., this one is "
            f"{ckpt.sha256[:12]}...); name this one differently with --checkpoint NAME=SPEC or use another --output."
        )
    folder.mkdir(parents=True, exist_ok=True)
    if not marker.exists() or _read_json(marker) != ckpt.as_dict():
        atomic_write_text(marker, dumps_json(ckpt.as_dict(), indent=2) + "\n")
    return folder


def task_json_path(output_dir: Path, checkpoint_name: str, task_name: str) -> Path:
    return _checkpoint_dir(output_dir, checkpoint_name) / f"{task_name}.json"


def task_samples_path(output_dir: Path, checkpoint_name: str, task_name: str) -> Path:
    return _checkpoint_dir(output_dir, checkpoint_name) / f"{task_name}{SAMPLES_SUFFIX}"


# --------------------------------------------------------------------------- provenance


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO 8601 UTC with a trailing ``Z``; the form used for ``run.started_at``/``finished_at``."""
    moment = moment or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        raise ValueError("utc_timestamp needs a timezone-aware datetime; use datetime.now(timezone.utc).")
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def package_versions() -> dict[str, str | None]:
    """Versions from package metadata (no imports, so torch is never loaded here)."""
    versions: dict[str, str | None] = {}
    for label, distribution in _VERSIONED_DISTRIBUTIONS.items():
        try:
            versions[label] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[label] = None
    versions["python"] = platform.python_version()
    return versions


def _git(source_root: Path, *args: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", "-C", str(source_root), *args], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


@lru_cache(maxsize=4)
def git_commit(source_root: Path = _SOURCE_ROOT) -> str | None:
    """HEAD of the git checkout holding the coca_bench sources, ``-dirty`` if it has uncommitted changes.

    ``None`` when the sources are not a git checkout, or when the repository around
    them is not this project's (an installed copy inside some other repository).
    """
    head = _git(source_root, "rev-parse", "HEAD")
    if not head:
        return None
    if not _git(source_root, "ls-files", "--", "coca_bench/results.py"):
        return None
    status = _git(source_root, "status", "--porcelain")
    return f"{head}-dirty" if status else head


def _relative_or_absolute(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(Path(path).resolve())


def _normalise_run_info(run_info: Mapping[str, Any]) -> dict[str, Any]:
    missing = [key for key in RUN_INFO_KEYS if key not in run_info]
    if missing:
        raise ValueError(f"build_record: run_info lacks {missing}; the runner must pass all of {list(RUN_INFO_KEYS)}.")
    run = dict(run_info)
    for key in ("started_at", "finished_at"):
        if isinstance(run[key], datetime):
            run[key] = utc_timestamp(run[key])
    run["argv"] = list(run["argv"] or [])
    return run


def _metric_values(task: TaskSpec, result: TaskResult) -> dict[str, float]:
    undeclared = sorted(set(result.metrics) - {m.name for m in task.metrics})
    if undeclared:
        raise ValueError(
            f"Task {task.name!r} ({task.source}) returned metric(s) {undeclared} that it does not declare; "
            "add them to register_task(metrics=...) so their direction and column order are known."
        )
    values: dict[str, float] = {}
    for spec in task.metrics:  # declared order
        if spec.name not in result.metrics:
            continue
        raw = result.metrics[spec.name]
        try:
            values[spec.name] = float(raw)
        except (TypeError, ValueError):
            raise ValueError(
                f"Task {task.name!r} returned metric {spec.name!r} = {raw!r}, which is not a number."
            ) from None
    return values


def build_record(
    *,
    task: TaskSpec,
    params: dict,
    result: TaskResult,
    checkpoint: CheckpointInfo,
    key: str,
    data_root: Path,
    dataset_fingerprint: str,
    run_info: dict,
) -> dict:
    """The JSON record of one (checkpoint, task) run: metrics plus everything needed to reproduce them."""
    metrics = _metric_values(task, result)
    dataset_dir = Path(data_root) / task.dataset
    return {
        "schema_version": SCHEMA_VERSION,
        "key": key,
        "task": {
            "name": task.name,
            "version": task.version,
            "groups": list(task.groups),
            "description": task.description,
            "source": task.source,
            "metrics": [m.name for m in task.metrics],
        },
        "checkpoint": checkpoint.as_dict(),
        "metrics": metrics,
        "higher_is_better": {m.name: m.higher_is_better for m in task.metrics if m.name in metrics},
        "num_samples": len(result.samples),
        "dataset": {
            "name": task.dataset,
            "root": str(dataset_dir),
            "split": result.split,
            "fingerprint": dataset_fingerprint,
            "annotation_files": [_relative_or_absolute(p, dataset_dir) for p in result.annotation_files],
        },
        "config": {
            "params": to_json_value(dict(params), where=f"task {task.name!r} parameters"),
            "extra": to_json_value(dict(result.extra_config), where=f"task {task.name!r} extra_config"),
        },
        "run": to_json_value(_normalise_run_info(run_info), where="run_info"),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "skipped": [{"id": s.sample_id, "reason": s.reason} for s in result.skipped],
    }


# --------------------------------------------------------------------------- write / read one result


def write_task_result(output_dir: Path, ckpt: CheckpointInfo, record: dict, samples: list[dict]) -> Path:
    """Write ``<task>.samples.jsonl`` then ``<task>.json``; returns the JSON path.

    The old JSON is removed first, so a crash between the two writes leaves no
    record pointing at the wrong samples (the task is simply rerun next time).
    """
    if record.get("checkpoint", {}).get("sha256") != ckpt.sha256:
        raise ValueError(f"write_task_result: the record belongs to another checkpoint than {ckpt.name!r}.")
    if record.get("num_samples") != len(samples):
        raise ValueError(
            f"write_task_result: record says {record.get('num_samples')} samples but {len(samples)} were given."
        )
    task_name = record["task"]["name"]
    claim_checkpoint_dir(output_dir, ckpt)
    json_path = task_json_path(output_dir, ckpt.name, task_name)
    samples_path = task_samples_path(output_dir, ckpt.name, task_name)
    samples_text = "".join(_jsonl_line(row) for row in samples)
    with contextlib.suppress(FileNotFoundError):
        json_path.unlink()
    atomic_write_text(samples_path, samples_text)
    final = {**record, "samples_file": {"name": samples_path.name, "rows": len(samples), "sha256": _sha256_text(samples_text)}}
    atomic_write_text(json_path, dumps_json(final, indent=2) + "\n")
    return json_path


def _restore_nan_metrics(record: dict) -> dict:
    """``null`` metrics are NaN on disk (JSON has no NaN); give callers floats back."""
    if isinstance(record.get("metrics"), dict):
        record["metrics"] = {k: (math.nan if v is None else float(v)) for k, v in record["metrics"].items()}
    return record


def load_task_result(output_dir: Path, checkpoint_name: str, task_name: str) -> dict | None:
    path = task_json_path(output_dir, checkpoint_name, task_name)
    if not path.is_file():
        return None
    return _restore_nan_metrics(_read_json(path))


def load_samples(output_dir: Path, checkpoint_name: str, task_name: str) -> list[dict]:
    """Per-sample records, or ``[]`` when the file is absent (results written before samples were kept)."""
    path = task_samples_path(output_dir, checkpoint_name, task_name)
    if not path.is_file():
        return []
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{path} line {line_number} is not valid JSON ({exc}); rerun that task with --force."
                ) from None
    return rows


def find_reusable(output_dir: Path, checkpoint_name: str, task_name: str, key: str) -> dict | None:
    """The stored record if it was computed with ``key`` and its samples file is complete; else ``None``."""
    try:
        record = load_task_result(output_dir, checkpoint_name, task_name)
    except ValueError as exc:
        warnings.warn(f"{exc} It will be recomputed.", stacklevel=2)
        return None
    if record is None or record.get("key") != key or record.get("schema_version") != SCHEMA_VERSION:
        return None
    samples_path = task_samples_path(output_dir, checkpoint_name, task_name)
    if not samples_path.is_file():
        return None
    data = samples_path.read_bytes()
    rows = sum(1 for line in data.split(b"\n") if line.strip())
    if rows != record.get("num_samples"):
        return None
    expected_sha = (record.get("samples_file") or {}).get("sha256")
    if expected_sha is not None and hashlib.sha256(data).hexdigest() != expected_sha:
        return None
    return record


# --------------------------------------------------------------------------- many results


def _is_task_record(path: Path) -> bool:
    return path.suffix == ".json" and path.name != CHECKPOINT_FILE and not path.name.startswith(".")


def _records_in(folder: Path) -> list[dict]:
    records = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and _is_task_record(p)):
        try:
            record = _read_json(path)
        except ValueError as exc:
            warnings.warn(f"Skipping {exc}", stacklevel=3)
            continue
        if isinstance(record, dict) and "schema_version" in record and isinstance(record.get("task"), dict):
            records.append(_restore_nan_metrics(record))
    return records


def collect_records(output_dir: Path) -> list[dict]:
    """Every ``<ckpt>/<task>.json`` under ``output_dir``, sorted by (checkpoint, task)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    records = []
    for folder in sorted(p for p in output_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        records.extend(_records_in(folder))
    return sorted(records, key=lambda r: (r["checkpoint"]["name"], r["task"]["name"]))


def comparability_differences(baseline: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """What, besides the checkpoint, differs between two records of one task (empty: like for like)."""

    def get(record: Mapping[str, Any], dotted: str) -> Any:
        value: Any = record
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value

    differences = [
        field
        for field in ("task.version", "dataset.fingerprint", "dataset.split", "run.precision", "run.limit", "run.seed")
        if get(baseline, field) != get(other, field)
    ]
    for section in ("params", "extra"):
        a, b = get(baseline, f"config.{section}") or {}, get(other, f"config.{section}") or {}
        differences += [f"config.{section}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return differences


# --------------------------------------------------------------------------- tables


def format_number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return ""
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def render_text_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """Padded plain-text columns; ``align`` has one letter per column, ``l`` or ``r`` (default: first l, rest r)."""
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if a == "l" else str(c).rjust(w) for c, w, a in zip(cells, widths, align)
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def render_markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    align = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join([line(header), "|" + "|".join(align) + "|", *(line(r) for r in rows)])


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _summary_columns(
    records: Sequence[dict], metric_order: Mapping[str, Sequence[str]] | None
) -> list[tuple[str, str, bool]]:
    """(task, metric, higher_is_better) in a stable order: registry order when given, else task names sorted."""
    declared: dict[str, list[str]] = {}
    direction: dict[tuple[str, str], bool] = {}
    for record in records:
        task = record["task"]["name"]
        names = declared.setdefault(task, [])
        for metric in [*record["task"].get("metrics", []), *record["metrics"]]:
            if metric in record["metrics"] and metric not in names:
                names.append(metric)
            if metric in record["metrics"]:
                direction[(task, metric)] = bool(record.get("higher_is_better", {}).get(metric, True))
    order = dict(metric_order or {})
    tasks = [t for t in order if t in declared] + sorted(t for t in declared if t not in order)
    columns = []
    for task in tasks:
        present = declared[task]
        wanted = [m for m in order.get(task, ()) if m in present] + [m for m in present if m not in order.get(task, ())]
        columns += [(task, metric, direction[(task, metric)]) for metric in wanted]
    return columns


def write_summary(output_dir: Path, metric_order: Mapping[str, Sequence[str]] | None = None) -> tuple[Path, Path]:
    """``summary.csv`` (full precision) and ``summary.md`` (4 decimals): one row per checkpoint.

    Columns are ``<task>/<metric>``; an empty cell means the task was not run for
    that checkpoint, ``nan`` means the metric is undefined (e.g. acc5 with < 5 classes).
    """
    output_dir = Path(output_dir)
    records = collect_records(output_dir)
    columns = _summary_columns(records, metric_order)
    by_checkpoint: dict[str, dict[str, dict]] = {}
    for record in records:
        by_checkpoint.setdefault(record["checkpoint"]["name"], {})[record["task"]["name"]] = record

    def cell(checkpoint: str, task: str, metric: str, digits: int | None) -> str:
        """``digits=None``: full precision (CSV)."""
        record = by_checkpoint[checkpoint].get(task)
        value = None if record is None else record["metrics"].get(metric)
        if value is None or digits is not None:
            return format_number(value, digits or 4)
        return "nan" if math.isnan(value) else repr(value)

    checkpoints = sorted(by_checkpoint)
    csv_header = ["checkpoint", *(f"{t}/{m}" for t, m, _ in columns)]
    csv_rows = [[c, *(cell(c, t, m, None) for t, m, _ in columns)] for c in checkpoints]
    md_header = ["checkpoint", *(f"{t}/{m} {'↑' if up else '↓'}" for t, m, up in columns)]
    md_rows = [[c, *(cell(c, t, m, 4) for t, m, _ in columns)] for c in checkpoints]
    notes = _summary_notes(by_checkpoint)
    markdown = "# coca-bench summary\n\n" + (render_markdown_table(md_header, md_rows) if columns else "No results yet.")
    markdown += "\n\n↑ higher is better, ↓ lower is better; empty: not run; nan: undefined.\n"
    if notes:
        markdown += "\nNot like for like (compare with care):\n\n" + "".join(f"- {n}\n" for n in notes)
    csv_path, md_path = output_dir / SUMMARY_CSV, output_dir / SUMMARY_MD
    atomic_write_text(csv_path, _csv_text(csv_header, csv_rows))
    atomic_write_text(md_path, markdown)
    return csv_path, md_path


def _summary_notes(by_checkpoint: Mapping[str, Mapping[str, dict]]) -> list[str]:
    """Tasks whose runs differ across checkpoints in more than the weights (another limit, split, params...)."""
    notes = []
    tasks = sorted({t for per_task in by_checkpoint.values() for t in per_task})
    for task in tasks:
        runs = [(c, by_checkpoint[c][task]) for c in sorted(by_checkpoint) if task in by_checkpoint[c]]
        first_name, first = runs[0]
        for name, record in runs[1:]:
            differences = comparability_differences(first, record)
            if differences:
                notes.append(f"{task}: {name} vs {first_name} differ in {', '.join(differences)}")
    return notes


def format_results_table(records: list[dict]) -> str:
    """The console table printed at the end of a run: one row per (checkpoint, task)."""
    if not records:
        return "No results."
    header = ["checkpoint", "task", "samples", "skipped", "time_s", "metrics"]
    rows = []
    for record in sorted(records, key=lambda r: (r["checkpoint"]["name"], r["task"]["name"])):
        wall = (record.get("run") or {}).get("wall_time_s")
        metrics = "  ".join(f"{name}={format_number(value)}" for name, value in record["metrics"].items())
        rows.append(
            [
                record["checkpoint"]["name"],
                record["task"]["name"],
                str(record.get("num_samples", "")),
                str(len(record.get("skipped") or [])),
                "" if wall is None else f"{float(wall):.1f}",
                metrics,
            ]
        )
    return render_text_table(header, rows, align="llrrrl")


__all__ = [
    "SCHEMA_VERSION",
    "CheckpointInfo",
    "atomic_write_bytes",
    "atomic_write_jsonl",
    "atomic_write_text",
    "build_record",
    "canonical_json",
    "claim_checkpoint_dir",
    "collect_records",
    "comparability_differences",
    "find_reusable",
    "fingerprint_files",
    "format_results_table",
    "git_commit",
    "load_samples",
    "load_task_result",
    "package_versions",
    "result_key",
    "to_json_value",
    "utc_timestamp",
    "write_summary",
    "write_task_result",
]
