"""Finding a dataset's files where real downloads put them, without flags.

Real downloads differ: the Karpathy JSON sits beside the images, or in ``annotations/`` (LAVIS), and COCO's
``val2014/`` sits in the dataset folder or under ``images/``. A task names the candidate places; the first that
exists wins, a task parameter (``annotation_file``, ``image_root``) overrides the search, and when nothing is found
the error lists every place that was tried.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from coca_bench.data.annotations import DatasetNotFoundError
from coca_bench.data.records import RecordSet


def _tried(places: Sequence[Path]) -> str:
    return ", ".join(str(p) for p in places)


def locate_file(dataset_dir: Path, candidates: Sequence[str], what: str, override: str | Path | None = None) -> Path:
    """``override`` (relative to ``dataset_dir`` or absolute) if given, else the first candidate that exists."""
    places = [Path(dataset_dir) / (override if override else c) for c in ([override] if override else candidates)]
    for place in places:
        if place.is_file():
            return place
    raise DatasetNotFoundError(
        f"Cannot find {what}; tried {_tried(places)}. Put it in one of those places or pass "
        "--param annotation_file=PATH."
    )


def relocate_media(
    records: RecordSet,
    dataset_dir: Path,
    candidates: Sequence[str],
    what: str,
    override: str | Path | None = None,
    field: str = "path",
) -> RecordSet:
    """The records with their media paths moved to the first candidate root that holds the first item's file.

    Readers resolve media against ``dataset_dir``; each candidate root is tried with the item's path relative to
    ``dataset_dir`` (``val2014/x.jpg``) and with its bare file name (images flat in the root). Items that are missing
    from the chosen root stay there: they become recorded skips, never a silent change of root.
    """
    dataset_dir = Path(dataset_dir)
    if not records.items:
        return records
    roots = [dataset_dir / override] if override else [dataset_dir / c for c in candidates]
    first = Path(getattr(records.items[0], field))
    relative = first.relative_to(dataset_dir) if first.is_relative_to(dataset_dir) else Path(first.name)
    tried: list[Path] = []
    for root in roots:
        for keep_folders in (True, False):
            probe = root / (relative if keep_folders else relative.name)
            tried.append(probe)
            if probe.is_file():
                return dataclasses.replace(
                    records, items=tuple(_moved(item, field, dataset_dir, root, keep_folders) for item in records.items)
                )
    raise DatasetNotFoundError(
        f"Cannot find the {what} (looked for {relative.name}); tried {_tried(tried)}. Put the images in one of "
        "those places or pass --param image_root=PATH."
    )


def _moved(item: object, field: str, dataset_dir: Path, root: Path, keep_folders: bool) -> object:
    path = Path(getattr(item, field))
    relative = path.relative_to(dataset_dir) if path.is_relative_to(dataset_dir) else Path(path.name)
    return dataclasses.replace(item, **{field: root / (relative if keep_folders else relative.name)})  # type: ignore[type-var]


__all__ = ["locate_file", "relocate_media"]
