"""What a number depends on, as hashes: dataset contents, code, library versions, and the result key.

Why content everywhere: a path plus a size cannot tell an edited image from the original, and a task name cannot
tell this release's prompts from the next one's. Everything that can change a stored number is hashed into the key
under which it is stored, so a stale result or feature simply has another name and is never found. This module
imports no torch (versions come from package metadata).
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from coca_bench.fileio import canonical_json, sha256_file, sha256_text

PACKAGE_ROOT = Path(__file__).resolve().parent
_SOURCE_ROOT = PACKAGE_ROOT.parent
# Distributions whose versions can change a number (package metadata only: never import torch here).
VERSIONED_DISTRIBUTIONS = {
    "coca_bench": "coca-bench",
    "torch": "torch",
    "torchvision": "torchvision",
    "open_clip": "open_clip_torch",
    "numpy": "numpy",
    "pillow": "pillow",
    "scikit-learn": "scikit-learn",
    "pycocoevalcap": "pycocoevalcap",
    "decord": "decord",
    "av": "av",
}
# The code behind a feature vector: the network, preprocessing, decoding of media, and the extractor itself.
_FEATURE_CODE = ("model", "features.py", "data/images.py", "data/video.py")
_FEATURE_LIBRARIES = ("torch", "torchvision", "pillow", "numpy", "decord", "av")


# --------------------------------------------------------------------------- versions and code


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for label, distribution in VERSIONED_DISTRIBUTIONS.items():
        try:
            versions[label] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[label] = None
    versions["python"] = platform.python_version()
    return versions


def _python_files(root: Path, relative: str) -> list[Path]:
    target = root / relative
    return sorted(target.rglob("*.py")) if target.is_dir() else [target] if target.is_file() else []


def source_fingerprint(files: Iterable[Path], root: Path = PACKAGE_ROOT) -> str:
    """sha256 over the relative names and contents of source files."""
    entries = []
    for path in sorted({Path(p).resolve() for p in files}):
        try:
            name = path.relative_to(root).as_posix()
        except ValueError:
            name = path.name
        entries.append((name, sha256_file(path)))
    return sha256_text(canonical_json(entries))


@lru_cache(maxsize=1)
def feature_code_fingerprint() -> str:
    """The model code and the libraries that turn input bytes into feature vectors (part of every cache key)."""
    files = [f for part in _FEATURE_CODE for f in _python_files(PACKAGE_ROOT, part)]
    versions = {name: package_versions().get(name) for name in _FEATURE_LIBRARIES}
    return sha256_text(canonical_json({"code": source_fingerprint(files), "versions": versions}))


@lru_cache(maxsize=64)
def suite_code_fingerprint(task_source: str = "") -> str:
    """Every source file of the package plus the task's own file and the library versions (part of result keys)."""
    files = _python_files(PACKAGE_ROOT, "")
    if task_source and Path(task_source).is_file():
        files.append(Path(task_source))
    return sha256_text(canonical_json({"code": source_fingerprint(files), "versions": package_versions()}))


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

    ``None`` when the sources are not a git checkout, or when the repository around them is not this project's
    (an installed copy inside some other repository).
    """
    head = _git(source_root, "rev-parse", "HEAD")
    if not head:
        return None
    if not _git(source_root, "ls-files", "--", "coca_bench/registry.py"):
        return None
    status = _git(source_root, "status", "--porcelain")
    return f"{head}-dirty" if status else head


# --------------------------------------------------------------------------- datasets


def _walk(path: Path) -> list[Path]:
    """Every non-hidden file under ``path`` (or ``path`` itself), sorted, following links."""
    if path.is_file():
        return [path]
    found: list[Path] = []
    for folder, subfolders, files in os.walk(path, followlinks=True):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found.extend(Path(folder) / name for name in sorted(files) if not name.startswith("."))
    return found


def _name(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path.resolve())


def content_fingerprint(paths: Sequence[Path], base: Path) -> str:
    """sha256 over (name relative to ``base``, content sha256) of every file under ``paths``.

    Folders are walked, so an added, removed, renamed or edited file (ImageNet's labels are its folder names)
    changes the fingerprint; a missing path is part of it too. Contents are read once and then remembered by
    path, size and mtime, so a rerun costs one ``stat`` per file. Moving the dataset root keeps the fingerprint.
    """
    base = Path(base)
    files: list[Path] = []
    entries: list[Any] = []
    for path in paths:
        if path.exists():
            files.extend(_walk(path))
        else:
            entries.append([_name(path, base), "absent"])
    with ThreadPoolExecutor(max_workers=4) as pool:  # hashing releases the GIL
        digests = list(pool.map(sha256_file, files))
    entries.extend([_name(f, base), d] for f, d in zip(files, digests))
    return sha256_text(canonical_json(sorted(entries)))


def annotation_fingerprint(paths: Sequence[Path]) -> str:
    """sha256 over (name, content) of annotation files, independent of their order and of where the dataset lives.

    Names are relative to the files' common folder: moving a dataset keeps its fingerprint, while renaming or
    editing any file changes it.
    """
    files = [Path(p) for p in paths]
    for path in files:
        if path.is_dir():
            raise ValueError(
                f"annotation_fingerprint got the folder {path}; pass annotation files (labels, captions, "
                "questions), and declare media folders with register_task(inputs=...)."
            )
        if not path.is_file():
            raise FileNotFoundError(f"Annotation file {path} does not exist; check the dataset layout.")
    if not files:
        return sha256_text("no annotation files")
    resolved = [p.resolve() for p in files]
    root = Path(os.path.commonpath([str(p.parent) for p in resolved]))
    return sha256_text(canonical_json(sorted((p.relative_to(root).as_posix(), sha256_file(p)) for p in resolved)))


def dataset_fingerprint(inputs_fingerprint: str, annotation_files: Sequence[Path]) -> str:
    """The declared inputs' contents plus the annotation files the task read (which may live elsewhere)."""
    return sha256_text(f"{inputs_fingerprint}|{annotation_fingerprint(annotation_files)}")


# --------------------------------------------------------------------------- the result key


def result_key(
    *,
    task_name: str,
    task_version: int,
    params: Mapping[str, Any],
    key_material: Mapping[str, Any],
    settings: Mapping[str, Any],
    checkpoint_sha256: str,
    model_fingerprint: str,
    dataset_fingerprint: str,
    code_fingerprint: str,
) -> str:
    """Stable hash of what determines a result's numbers; the checkpoint *name* is left out on purpose.

    Task parameters and the runner's settings are separate parts, so a parameter named ``seed`` or ``limit``
    can never overwrite the run's own.
    """
    return sha256_text(
        canonical_json(
            {
                "task": {"name": task_name, "version": task_version},
                "params": dict(params),
                "key_material": dict(key_material),
                "settings": dict(settings),
                "checkpoint_sha256": checkpoint_sha256,
                "model": model_fingerprint,
                "dataset": dataset_fingerprint,
                "code": code_fingerprint,
            }
        )
    )


__all__ = [
    "annotation_fingerprint",
    "content_fingerprint",
    "dataset_fingerprint",
    "feature_code_fingerprint",
    "git_commit",
    "package_versions",
    "result_key",
    "source_fingerprint",
    "suite_code_fingerprint",
]
