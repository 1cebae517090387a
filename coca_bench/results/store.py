"""The result store of one output folder: the only reader and writer of ``OUTPUT/<checkpoint>/<task>.*``.

Layout::

    OUTPUT/<checkpoint>/checkpoint.json              name, spec, sha256: claims the folder
    OUTPUT/<checkpoint>/<task>.json                  metrics + provenance (the commit marker)
    OUTPUT/<checkpoint>/<task>.samples.jsonl         per-sample records (for the bootstrap)

Every file is written atomically, so a crash leaves the previous version or nothing. A task's JSON is written last
and names the sha256 of its samples file: a result exists only once its samples are on disk, and a samples file
that does not match is never read back as that result.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import warnings
from pathlib import Path

from coca_bench.fileio import atomic_write_text, dumps_json, read_json, sha256_bytes, sha256_text
from coca_bench.results.schema import SCHEMA_VERSION, CheckpointInfo

CHECKPOINT_FILE = "checkpoint.json"
SAMPLES_SUFFIX = ".samples.jsonl"
_VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]*$")


def _restore_nan_metrics(record: dict) -> dict:
    """``null`` metrics are NaN on disk (JSON has no NaN); give callers floats back."""
    if isinstance(record.get("metrics"), dict):
        record["metrics"] = {k: (math.nan if v is None else float(v)) for k, v in record["metrics"].items()}
    return record


class ResultStore:
    """Results of many checkpoints under one output folder."""

    def __init__(self, output_dir: Path | str) -> None:
        self.output_dir = Path(output_dir)

    # ------------------------------------------------------------------ folders
    def checkpoint_dir(self, name: str) -> Path:
        if not _VALID_NAME.match(name or ""):
            raise ValueError(
                f"Checkpoint name {name!r} cannot name a results folder; use letters, digits, '.', '_', '-', '+', "
                "'=' (set it with --checkpoint NAME=SPEC)."
            )
        return self.output_dir / name

    def json_path(self, checkpoint: str, task: str) -> Path:
        return self.checkpoint_dir(checkpoint) / f"{task}.json"

    def samples_path(self, checkpoint: str, task: str) -> Path:
        return self.checkpoint_dir(checkpoint) / f"{task}{SAMPLES_SUFFIX}"

    def claim(self, ckpt: CheckpointInfo) -> Path:
        """Create ``OUTPUT/<name>/checkpoint.json``; refuse a folder that holds another checkpoint's results."""
        folder = self.checkpoint_dir(ckpt.name)
        marker = folder / CHECKPOINT_FILE
        owner_sha: str | None = None
        if marker.exists():
            owner_sha = read_json(marker).get("sha256")
        elif folder.is_dir():  # results without a marker (copied in by hand): trust the records themselves
            owner_sha = next(
                (
                    r["checkpoint"].get("sha256")
                    for r in self._records_in(folder)
                    if isinstance(r.get("checkpoint"), dict)
                ),
                None,
            )
        if owner_sha is not None and owner_sha != ckpt.sha256:
            raise ValueError(
                f"{folder} holds results of another checkpoint (sha256 {owner_sha[:12]}..., this one is "
                f"{ckpt.sha256[:12]}...); name this one differently with --checkpoint NAME=SPEC or use another --output."
            )
        folder.mkdir(parents=True, exist_ok=True)
        if not marker.exists() or read_json(marker) != ckpt.as_dict():
            atomic_write_text(marker, dumps_json(ckpt.as_dict(), indent=2) + "\n")
        return folder

    # ------------------------------------------------------------------ one result
    def write(self, ckpt: CheckpointInfo, record: dict, samples: list[dict]) -> Path:
        """Write ``<task>.samples.jsonl`` then ``<task>.json``; returns the JSON path.

        The old JSON is removed first, so a crash between the two writes leaves no record pointing at the wrong
        samples (the task is simply rerun next time).
        """
        if record.get("checkpoint", {}).get("sha256") != ckpt.sha256:
            raise ValueError(f"ResultStore.write: the record belongs to another checkpoint than {ckpt.name!r}.")
        if record.get("num_samples") != len(samples):
            raise ValueError(f"ResultStore.write: record says {record.get('num_samples')} samples, got {len(samples)}.")
        task = record["task"]["name"]
        self.claim(ckpt)
        json_path, samples_path = self.json_path(ckpt.name, task), self.samples_path(ckpt.name, task)
        samples_text = "".join(dumps_json(row) + "\n" for row in samples)
        with contextlib.suppress(FileNotFoundError):
            json_path.unlink()
        atomic_write_text(samples_path, samples_text)
        digest = {"name": samples_path.name, "rows": len(samples), "sha256": sha256_text(samples_text)}
        atomic_write_text(json_path, dumps_json({**record, "samples_file": digest}, indent=2) + "\n")
        return json_path

    def load(self, checkpoint: str, task: str) -> dict | None:
        """The stored record, ``None`` when absent; ``ValueError`` when the file is not a JSON record."""
        path = self.json_path(checkpoint, task)
        if not path.is_file():
            return None
        record = read_json(path)
        if not isinstance(record, dict):
            raise ValueError(f"{path} is not a result record; delete it, or rerun that task with --force.")
        return _restore_nan_metrics(record)

    def samples(self, checkpoint: str, task: str) -> list[dict]:
        """Per-sample records, or ``[]`` when the file is absent."""
        path = self.samples_path(checkpoint, task)
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

    def find_reusable(self, checkpoint: str, task: str, key: str) -> dict | None:
        """The stored record if it was computed under ``key`` and its samples file is intact; else ``None``."""
        try:
            record = self.load(checkpoint, task)
        except ValueError as exc:
            warnings.warn(f"{exc} It will be recomputed.", stacklevel=2)
            return None
        if record is None or record.get("key") != key or record.get("schema_version") != SCHEMA_VERSION:
            return None
        samples_path = self.samples_path(checkpoint, task)
        if not samples_path.is_file():
            return None
        data = samples_path.read_bytes()
        if sha256_bytes(data) != (record.get("samples_file") or {}).get("sha256"):
            warnings.warn(f"{samples_path} does not match its record's sha256; it will be recomputed.", stacklevel=2)
            return None
        return record

    # ------------------------------------------------------------------ many results
    @staticmethod
    def _records_in(folder: Path) -> list[dict]:
        records = []
        for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".json"):
            if path.name == CHECKPOINT_FILE or path.name.startswith("."):
                continue
            try:
                record = read_json(path)
            except ValueError as exc:
                warnings.warn(f"Skipping {exc}", stacklevel=3)
                continue
            if isinstance(record, dict) and "schema_version" in record and isinstance(record.get("task"), dict):
                records.append(_restore_nan_metrics(record))
        return records

    def records(self) -> list[dict]:
        """Every ``<checkpoint>/<task>.json``, sorted by (checkpoint, task)."""
        if not self.output_dir.is_dir():
            return []
        records = []
        for folder in sorted(p for p in self.output_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            records.extend(self._records_in(folder))
        return sorted(records, key=lambda r: (r["checkpoint"]["name"], r["task"]["name"]))


__all__ = ["CHECKPOINT_FILE", "SAMPLES_SUFFIX", "ResultStore"]
