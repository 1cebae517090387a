"""What a number depends on, as hashes: dataset contents, code, library versions, and the result key.

Why content everywhere: a path plus a size cannot tell an edited image from the original, and a task name cannot
tell this release's prompts from the next one's. Everything that can change a stored number is hashed into the key
under which it is stored, so a stale result or feature simply has another name and is never found. This module
imports no torch (versions come from package metadata).
"""

from __future__ import annotations

import ast
import dataclasses
import platform
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


@lru_cache(maxsize=512)
def _normalised_source(path: Path, signature: tuple[int, int, int]) -> tuple[str, tuple[str, ...]]:
    """(sha256 of the syntax tree without docstrings, the modules it imports): comments, formatting and docstrings
    cannot change a number, so editing them changes neither."""
    tree = _without_docstrings(ast.parse(path.read_bytes(), filename=str(path)))
    return sha256_text(ast.dump(tree, annotate_fields=False, include_attributes=False)), _imports(tree, path)


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE_ROOT).with_suffix("")
    parts = [p for p in relative.parts if p != "__init__"]
    return ".".join(["coca_bench", *parts])


_LOCAL = "file:"  # an import resolved to a file beside a plugin (see _imports)


def _imports(tree: ast.AST, path: Path) -> tuple[str, ...]:
    """Every module an import statement anywhere in the file names (lazy imports inside functions included), with
    ``from X import name`` also naming ``X.name`` in case it is a submodule.

    A plugin outside the package imports its helpers from its own folder (``from ._common import x`` or
    ``import _common``: the registry loads the folder as a package and puts it on ``sys.path``); those imports are
    returned as ``file:<path>`` of the helper files that exist, so the code key covers them too.
    """
    try:
        package = _module_name(path).split(".")
        if path.name != "__init__.py":
            package = package[:-1]
    except ValueError:  # a plugin outside the package: its own folder's modules, and absolute imports
        package = []
    own = _own_package_root(path) if not package else None  # an installed plugin package imports itself absolutely
    names: list[str] = []
    if own is not None:  # importing the plugin module runs every __init__.py above it
        names += [_LOCAL + str((f / "__init__.py").resolve()) for f in path.parents if f.is_relative_to(own)]

    def local(folder: Path, dotted: list[str]) -> list[str]:
        found = _beside(folder, dotted)
        if own is not None:
            found += _beside(own.parent, [name for name in dotted if name.split(".")[0] == own.name])
        return found

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
            if not package:
                names += local(path.parent, [alias.name for alias in node.names])
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if not package or node.level > len(package):
                    if node.level - 2 >= len(path.parent.parents):
                        continue  # above the file system's root: Python cannot import it either
                    folder = path.parent.parents[node.level - 2] if node.level > 1 else path.parent
                    dotted = [base] if base else []
                    names += _beside(folder, [".".join([*dotted, a.name]) for a in node.names] + dotted)
                    continue
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            elif not package:
                names += local(path.parent, [base, *(f"{base}.{alias.name}" for alias in node.names)])
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names]
    return tuple(names)


def _own_package_root(path: Path) -> Path | None:
    """The outermost folder above ``path`` that is a regular package (``__init__.py`` all the way up), or None: a
    plugin shipped in a package (an entry point) imports its helpers as ``mypkg.helpers``."""
    root = None
    folder = path.parent
    while (folder / "__init__.py").is_file():
        root, folder = folder, folder.parent
    return root


def _beside(folder: Path, dotted_names: Iterable[str]) -> list[str]:
    """``file:<path>`` of each dotted module name that is a file (or package) under ``folder``, with the
    ``__init__.py`` of every package on the way (importing ``a.b`` runs ``a/__init__.py``)."""
    found = []
    for name in dotted_names:
        parts = name.split(".")
        base = folder.joinpath(*parts)
        candidates = [base.with_suffix(".py"), base / "__init__.py"]
        if any(candidate.is_file() for candidate in candidates):
            candidates += [folder.joinpath(*parts[:i], "__init__.py") for i in range(1, len(parts))]
        found += [_LOCAL + str(candidate.resolve()) for candidate in candidates if candidate.is_file()]
    return found


def _module_file(name: str) -> Path | None:
    return _module_file_under(name, PACKAGE_ROOT)


@lru_cache(maxsize=4096)
def _module_file_under(name: str, package_root: Path) -> Path | None:
    """The package file of a ``coca_bench`` module name (the built-in tasks live in ``tasks/``), or None."""
    parts = name.split(".")
    if parts[0] != "coca_bench":
        return None
    if parts[1:2] == ["builtin_tasks"]:
        roots = [package_root.parent / "tasks", package_root / "builtin_tasks"]
        parts = parts[2:]
    else:
        roots = [package_root]
        parts = parts[1:]
    for root in roots:
        base = root.joinpath(*parts) if parts else root
        for candidate in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
            if candidate is not None and candidate.is_file():
                return candidate
    return None


def _signature(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def code_closure(entry_files: Iterable[Path]) -> list[Path]:
    """The entry files and every ``coca_bench`` module they import, transitively (and a plugin's own helper modules
    beside it): the code that can run.

    Derived from the import statements themselves, so no list kept beside the code can drift from it.
    """
    seen: dict[Path, None] = {}
    queue = [Path(p).resolve() for p in entry_files]
    while queue:
        path = queue.pop()
        if path in seen or not path.is_file():
            continue
        seen[path] = None
        _, imported = _normalised_source(path, _signature(path))
        for name in imported:
            found = Path(name[len(_LOCAL) :]) if name.startswith(_LOCAL) else _module_file(name)
            if found is not None:
                queue.append(found.resolve())
    return sorted(seen)


def source_fingerprint(files: Iterable[Path], root: Path = PACKAGE_ROOT) -> str:
    """sha256 over the relative names and normalised syntax trees of source files."""
    entries = []
    for path in sorted({Path(p).resolve() for p in files}):
        try:
            name = path.relative_to(root).as_posix()
        except ValueError:
            name = path.name
        entries.append((name, _normalised_source(path, _signature(path))[0]))
    return sha256_text(canonical_json(entries))


@lru_cache(maxsize=1)
def feature_code_fingerprint() -> str:
    """The code that turns input bytes into feature vectors (the extractor and all it imports: the network,
    preprocessing, media decoding) and the libraries that run it: part of every feature-cache key."""
    entry = _module_file("coca_bench.features")  # a module or a package: the extractor and all it imports
    files = code_closure([entry] if entry is not None else [])
    versions = {name: package_versions().get(name) for name in _FEATURE_LIBRARIES}
    return sha256_text(canonical_json({"code": source_fingerprint(files), "versions": versions}))


@lru_cache(maxsize=256)
def suite_code_fingerprint(task_source: str = "") -> str:
    """The code that can change a task's numbers (its plugin file, the runner, and every ``coca_bench`` module
    either imports) and the library versions: part of every result key. The report, the comparison and the CLI
    are not imported by them, so editing those reruns nothing. Computed once per process, like the versions: the
    code a process runs is the code it imported when it started."""
    entries = [
        PACKAGE_ROOT / "runner.py",
        *([Path(task_source)] if task_source and Path(task_source).is_file() else []),
    ]
    return sha256_text(
        canonical_json({"code": source_fingerprint(code_closure(entries)), "versions": package_versions()})
    )


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


def _file_name(path: Path, data_root: Path) -> str:
    """A file's name in a fingerprint: relative to the data root (moving the root keeps the fingerprint), to the
    package for its bundled files, else absolute."""
    resolved = Path(path).resolve()
    for base, prefix in ((data_root, ""), (PACKAGE_ROOT, "coca_bench/")):
        try:
            return prefix + resolved.relative_to(Path(base).resolve()).as_posix()
        except ValueError:
            continue
    return str(resolved)


def _file_digest(path: Path) -> str:
    """sha256 of the bytes, or what kept them from being read: a missing media file is a recorded skip, and a file
    that appears later must change the fingerprint."""
    try:
        return sha256_file(path)
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        return f"unreadable:{type(exc).__name__}"


def _plain(value: Any, files: dict[Path, None]) -> Any:
    """A record's field as JSON, every ``Path`` collected (its name and digest are filled in later)."""
    if isinstance(value, Path):
        files.setdefault(value)
        return {"file": value}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), files) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v, files) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, files) for v in value]
    return value


@dataclass(frozen=True)
class DatasetFingerprint:
    """The fingerprint of what a task read, and how much it covers (stored in the result, for the reader)."""

    sha256: str
    files: int
    record_sets: int


def records_fingerprint(record_sets: Sequence[Any], data_root: Path) -> DatasetFingerprint:
    """sha256 over every record set a task loaded: each record's fields, with each file it names (media, and the
    annotation and class-list files of its set) replaced by its name and the sha256 of its bytes.

    Why records and not folders: the readers decide which files count (a layout search, a sibling ``coco/`` image
    folder, a ``--param`` split, hidden files), so the fingerprint follows them by construction. Labels, class
    names and captions are part of the records, so a renamed class folder or an edited caption changes it too.
    Contents are hashed once and then remembered by their stat (:func:`coca_bench.fileio.sha256_file`).
    """
    files: dict[Path, None] = {}
    sets = [_plain(records, files) for records in record_sets]
    with ThreadPoolExecutor(max_workers=4) as pool:  # hashing releases the GIL
        digests = dict(zip(files, pool.map(_file_digest, files)))
    names = {path: _file_name(path, data_root) for path in files}

    def named(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"file"} and isinstance(value["file"], Path):
                return [names[value["file"]], digests[value["file"]]]
            return {k: named(v) for k, v in value.items()}
        if isinstance(value, list):
            return [named(v) for v in value]
        return value

    payload = [{"type": type(records).__name__, **named(plain)} for records, plain in zip(record_sets, sets)]
    return DatasetFingerprint(sha256_text(canonical_json(payload)), len(files), len(record_sets))


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
    "DatasetFingerprint",
    "feature_code_fingerprint",
    "git_commit",
    "package_versions",
    "records_fingerprint",
    "result_key",
    "code_closure",
    "source_fingerprint",
    "suite_code_fingerprint",
]
