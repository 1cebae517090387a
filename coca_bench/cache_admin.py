"""``coca-bench cache``: how big the feature cache is, and pruning what no run has used for a while.

Why it is needed: content addressing means a stale entry is never found again, but it is never deleted either (a new
checkpoint, precision or code version simply writes new chunks). The cache grows until someone prunes it.

Layout it reads (written by :mod:`coca_bench.features`): ``<cache dir>/<kind>/<namespace[:16]>/<chunk key>.npz``.
A chunk's mtime is when it was last written or read (the extractor touches it on every cache hit), so
``--older-than DAYS`` removes exactly what no run has used in that long. Only chunk files and the temp files a killed
run left behind are ever removed.

Why the marker: "only chunk files" alone is not a guard, since any ``<a>/<b>/<c>.npz`` looks like one (a wrong
``--cache-dir`` once cost a user ``experiments/run1/embeddings.npz`` and its folders). So ``prune`` deletes only inside
a folder that carries :data:`~coca_bench.cache.CACHE_MARKER`, which the extractor writes before its first chunk, and
refuses any other folder with one line. A cache written before the marker existed is recognised only by its exact
layout: nothing in it but ``<kind>/<16 hex>/<64 hex>.npz`` chunks and their temp files, at least one chunk, no
symlinks. Then ``prune`` marks it and goes on (a ``--dry-run`` only reads); a single foreign file makes it refuse, with
the path of the marker to create by hand once the user has checked the folder.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from coca_bench.cache import (
    CACHE_MARKER,
    CHUNK_SUFFIX,
    cache_root,
    feature_cache_dir,
    is_marked_feature_cache,
    mark_feature_cache,
)
from coca_bench.fileio import TEMP_PREFIX, TEMP_SUFFIX
from coca_bench.runner import RunError

STALE_TEMP_SECONDS = 3600  # a live run's temp file lives for seconds; an hour-old one was left by a killed run
_DAY = 86400.0
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class CacheFile:
    """One chunk (or leftover temp file) of the feature cache."""

    path: Path
    kind: str
    namespace: str
    size: int
    mtime: float
    temp: bool = False


@dataclass
class PruneReport:
    removed: list[CacheFile] = field(default_factory=list)
    kept: int = 0

    @property
    def removed_bytes(self) -> int:
        return sum(f.size for f in self.removed)


def scan(cache_dir: Path) -> list[CacheFile]:
    """Every chunk and temp file at ``<kind>/<namespace>/``; anything else in the folder is not the cache's."""
    found: list[CacheFile] = []
    if not cache_dir.is_dir():
        return found
    for kind_dir in sorted(p for p in cache_dir.iterdir() if p.is_dir() and not p.is_symlink()):
        for ns_dir in sorted(p for p in kind_dir.iterdir() if p.is_dir() and not p.is_symlink()):
            for path in sorted(ns_dir.iterdir()):
                temp = path.name.startswith(TEMP_PREFIX) and path.name.endswith(TEMP_SUFFIX)
                if not (temp or path.suffix == CHUNK_SUFFIX) or not path.is_file() or path.is_symlink():
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:  # removed by a concurrent prune or replaced by a run
                    continue
                found.append(CacheFile(path, kind_dir.name, ns_dir.name, stat.st_size, stat.st_mtime, temp))
    return found


def _is_hex(name: str, length: int) -> bool:
    return len(name) == length and set(name) <= _HEX


def _is_chunk_name(name: str) -> bool:
    """``<64 hex>.npz``, or the temp file ``.<64 hex>.npz.<random>.tmp`` that an atomic write of one leaves."""
    if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
        target, _, random = name[len(TEMP_PREFIX) : -len(TEMP_SUFFIX)].rpartition(".")
        return bool(random) and _is_chunk_name(target)
    return name.endswith(CHUNK_SUFFIX) and _is_hex(name[: -len(CHUNK_SUFFIX)], 64)


def _has_cache_layout(cache_dir: Path) -> bool:
    """Whether an unmarked folder holds nothing but the feature cache's own layout, with at least one chunk."""
    chunks = 0
    for kind_dir in cache_dir.iterdir():
        if kind_dir.is_symlink() or not kind_dir.is_dir() or not kind_dir.name.replace("_", "").isalnum():
            return False
        for ns_dir in kind_dir.iterdir():
            if ns_dir.is_symlink() or not ns_dir.is_dir() or not _is_hex(ns_dir.name, 16):
                return False
            for path in ns_dir.iterdir():
                if path.is_symlink() or not path.is_file() or not _is_chunk_name(path.name):
                    return False
                chunks += not path.name.startswith(TEMP_PREFIX)
    return chunks > 0


def check_is_feature_cache(cache_dir: Path, *, adopt: bool = True) -> None:
    """:class:`RunError` unless ``cache_dir`` is a feature cache: marked, or an unmarked one recognised by its layout
    (marked now when ``adopt``). A folder that does not exist passes: there is nothing in it to delete."""
    if not cache_dir.is_dir() or is_marked_feature_cache(cache_dir):
        return
    if _has_cache_layout(cache_dir):
        if adopt:
            mark_feature_cache(cache_dir)
        return
    raise RunError(
        f"{cache_dir} is not a coca-bench feature cache (it has no {CACHE_MARKER} file), so cache prune removed "
        "nothing; pass the feature cache's folder as --cache-dir, or, if this is a cache written before the marker "
        f"existed, create {cache_dir / CACHE_MARKER} first."
    )


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _span(files: Sequence[CacheFile]) -> dict[str, Any]:
    return {
        "chunks": len(files),
        "bytes": sum(f.size for f in files),
        "oldest": _iso(min((f.mtime for f in files), default=None)),
        "newest": _iso(max((f.mtime for f in files), default=None)),
    }


def _tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def cache_info(cache_dir: Path) -> dict[str, Any]:
    """Totals, then per kind and per namespace: chunks, bytes and the oldest/newest last use; plus leftover temp files
    and, for context, the size of everything else under the cache root (bundled checkpoints, mini datasets)."""
    files = scan(cache_dir)
    chunks = [f for f in files if not f.temp]
    kinds: dict[str, Any] = {}
    for kind in sorted({f.kind for f in chunks}):
        of_kind = [f for f in chunks if f.kind == kind]
        namespaces = {
            ns: _span([f for f in of_kind if f.namespace == ns]) for ns in sorted({f.namespace for f in of_kind})
        }
        kinds[kind] = {**_span(of_kind), "namespaces": namespaces}
    root = cache_root()
    others = {}
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.resolve() != cache_dir.resolve():
                others[entry.name] = _tree_bytes(entry)
    temps = [f for f in files if f.temp]
    return {
        "cache_dir": str(cache_dir),
        "exists": cache_dir.is_dir(),
        **_span(chunks),
        "kinds": kinds,
        "temp_files": {"count": len(temps), "bytes": sum(f.size for f in temps)},
        "cache_root": {"path": str(root), "other_entries_bytes": others},
    }


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def format_info(info: dict[str, Any]) -> str:
    if not info["exists"]:
        return f"feature cache {info['cache_dir']}: does not exist (nothing cached yet)."
    lines = [
        f"feature cache {info['cache_dir']}: {_human(info['bytes'])} ({info['bytes']} bytes) in {info['chunks']} "
        f"chunks; last used: oldest {info['oldest'] or '-'}, newest {info['newest'] or '-'}"
    ]
    for kind, entry in info["kinds"].items():
        lines.append(
            f"  {kind:<18} {len(entry['namespaces']):>3} namespaces {entry['chunks']:>6} chunks {_human(entry['bytes']):>10}"
        )
        for namespace, span in entry["namespaces"].items():
            lines.append(
                f"    {namespace}  {span['chunks']:>6} chunks {_human(span['bytes']):>10}  "
                f"{span['oldest']} .. {span['newest']}"
            )
    if info["temp_files"]["count"]:
        lines.append(
            f"  {info['temp_files']['count']} temp files ({_human(info['temp_files']['bytes'])}) left by interrupted "
            "writes; `cache prune` removes those older than an hour"
        )
    others = info["cache_root"]["other_entries_bytes"]
    if others:
        listing = ", ".join(f"{name} {_human(size)}" for name, size in others.items())
        lines.append(f"cache root {info['cache_root']['path']}: {listing}")
    return "\n".join(lines)


def prune(
    cache_dir: Path,
    *,
    older_than_days: float | None = None,
    everything: bool = False,
    kinds: Sequence[str] = (),
    dry_run: bool = False,
    now: float | None = None,
) -> PruneReport:
    """Remove chunks not used for ``older_than_days`` (or all of them), of ``kinds`` if given, plus temp files
    older than an hour; then the folders this empties. Only in a feature cache (:func:`check_is_feature_cache`)."""
    if everything == (older_than_days is not None):
        raise RunError("cache prune needs exactly one of --older-than DAYS or --all.")
    if older_than_days is not None and older_than_days < 0:
        raise RunError(f"--older-than must be 0 or more days; got {older_than_days}.")
    check_is_feature_cache(cache_dir, adopt=not dry_run)
    now = time.time() if now is None else now
    report = PruneReport()
    for entry in scan(cache_dir):
        if kinds and entry.kind not in kinds:
            report.kept += 1
            continue
        if entry.temp:
            doomed = now - entry.mtime > STALE_TEMP_SECONDS
        else:
            doomed = everything or now - entry.mtime > older_than_days * _DAY  # type: ignore[operator]
        if not doomed:
            report.kept += 1
            continue
        if not dry_run:
            try:
                entry.path.unlink()
            except FileNotFoundError:
                continue
        report.removed.append(entry)
    if not dry_run:
        for folder in sorted({f.path.parent for f in report.removed}, reverse=True):
            for empty in (folder, folder.parent):
                try:
                    empty.rmdir()  # only succeeds when empty
                except OSError:
                    pass
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coca-bench cache",
        description="Report the feature cache's size (`cache --info`, the default) or prune it (`cache prune`).",
    )
    parser.add_argument("action", nargs="?", choices=("info", "prune"), default="info")
    parser.add_argument("--info", action="store_true", help="report sizes per kind and namespace (the default)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="feature cache (default $COCA_BENCH_CACHE/features or ~/.cache/coca_bench/features)",
    )
    parser.add_argument("--json", action="store_true", help="with info: print the report as JSON")
    parser.add_argument(
        "--older-than", type=float, default=None, metavar="DAYS", help="prune: chunks no run has used for DAYS days"
    )
    parser.add_argument("--all", dest="everything", action="store_true", help="prune: every chunk")
    parser.add_argument(
        "--kind", dest="kinds", action="append", default=[], metavar="KIND", help="prune: only this kind; repeatable"
    )
    parser.add_argument("--dry-run", action="store_true", help="prune: list what would be removed, remove nothing")
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    cache_dir = args.cache_dir if args.cache_dir is not None else feature_cache_dir()
    pruning = args.older_than is not None or args.everything or args.kinds or args.dry_run
    if args.action == "info" or args.info:
        if args.action == "prune" or pruning:
            raise RunError("cache --info reports only; run `cache prune --older-than DAYS` or `cache prune --all`.")
        info = cache_info(cache_dir)
        print(json.dumps(info, indent=2) if args.json else format_info(info))
        return 0
    report = prune(
        cache_dir, older_than_days=args.older_than, everything=args.everything, kinds=args.kinds, dry_run=args.dry_run
    )
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{verb} {len(report.removed)} files ({_human(report.removed_bytes)}) from {cache_dir}; "
        f"{report.kept} chunks kept."
    )
    return 0


__all__ = ["CacheFile", "PruneReport", "cache_info", "check_is_feature_cache", "format_info", "main", "prune", "scan"]
