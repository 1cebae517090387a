"""Keeping a probe's evaluation split apart from its training split, by file rather than by name.

A probe that scores images it was trained on reports a number about memorisation (``eval_split=train`` gave 0.531
against 0.300 on val). Two split names can also point at the same files (a symlinked folder, hard links, a copy made
with ``cp -l``), so the check compares the files themselves: the same device and inode where the file exists, the
same resolved path where it does not (a missing clip is a recorded skip, never a reason to pass the check).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from coca_bench.data.annotations import DatasetLayoutError
from coca_bench.data.records import RecordSet

MEDIA_FIELDS = ("path", "image_path")


class SplitOverlapError(DatasetLayoutError):
    """The evaluated split shares media files with the split the probe trains on (a user error: exit 2)."""


def media_path(item: Any) -> Path | None:
    """The media file a record names (``path`` or ``image_path``, attribute or mapping key), None if it names none."""
    for name in MEDIA_FIELDS:
        value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
        if value is not None:
            return Path(value)
    return None


def _identity(path: Path) -> tuple[int, int] | str:
    """What makes two paths the same file: (device, inode) of an existing file, else its resolved path."""
    try:
        stat = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (stat.st_dev, stat.st_ino)


def _files(items: Iterable[Any]) -> dict[tuple[int, int] | str, Path]:
    files: dict[tuple[int, int] | str, Path] = {}
    for item in items:
        path = media_path(item)
        if path is not None:
            files.setdefault(_identity(path), path)
    return files


def require_disjoint_splits(train: RecordSet[Any], evaluation: RecordSet[Any]) -> None:
    """Refuse to evaluate a probe on any media file of its training split (call before the model is touched).

    Every probe task calls this on the full record sets, before ``--limit`` shortens the evaluated one, so a split
    choice is refused or accepted whatever the limit.
    """
    trained = _files(train.items)
    shared = [(path, trained[key]) for key, path in _files(evaluation.items).items() if key in trained]
    if not shared:
        return
    eval_path, train_path = shared[0]
    same = f"{eval_path}" if eval_path == train_path else f"{eval_path}, which is {train_path}"
    raise SplitOverlapError(
        f"The evaluation split {evaluation.split!r} shares {len(shared)} of its files with the training split "
        f"{train.split!r} (e.g. {same}), so the probe would score what it was trained on; evaluate on a split that "
        "holds none of the training files."
    )


__all__ = ["SplitOverlapError", "media_path", "require_disjoint_splits"]
