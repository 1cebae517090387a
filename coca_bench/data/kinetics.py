"""Kinetics-style video classification: ``annotations/<split>.csv`` plus trimmed clips.

The csv is the official one (``label,youtube_id,time_start,time_end,split``); a clip
file is ``<youtube_id>_<time_start:06d>_<time_end:06d>.mp4``, either in a folder per
label (``<split>/<label>/``, as most downloaders write; spaces in labels may also be
underscores) or directly in ``<split>/``. Class indices are the sorted label names,
the Kinetics convention; pass the training set's ``class_ids`` when reading the
evaluation split so both share one label space.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from coca_bench.data.annotations import AnnotationFile, require_dataset_dir
from coca_bench.data.records import ClassificationSet, VideoClip

_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def kinetics_clip_name(youtube_id: str, time_start: int, time_end: int, suffix: str = ".mp4") -> str:
    return f"{youtube_id}_{time_start:06d}_{time_end:06d}{suffix}"


def read_kinetics(
    root: Path, split: str = "val", classes: Sequence[str] | None = None, video_suffix: str = ".mp4"
) -> ClassificationSet[VideoClip]:
    """Clips of ``split`` in csv order, labelled by index into ``classes`` (default: the csv's sorted labels)."""
    root = require_dataset_dir(Path(root), f"Kinetics annotations/{split}.csv and {split}/<label>/<clip>.mp4")
    source = AnnotationFile(
        root / "annotations" / f"{split}.csv", "the Kinetics csv with columns " + ",".join(_COLUMNS) + ",split"
    )
    source.require_exists(f"the Kinetics annotation csv for split {split!r}")
    rows = source.read_csv(_COLUMNS)
    if not rows:
        raise source.error("has no rows")
    labels = [row["label"].strip() for row in rows]
    class_ids = tuple(classes) if classes is not None else tuple(sorted(set(labels)))
    index_of = {label: i for i, label in enumerate(class_ids)}
    split_dir = root / split
    clips = []
    line_of: dict[str, int] = {}  # clip id -> line, for duplicates
    for line_number, (row, label) in enumerate(zip(rows, labels), start=2):
        if label not in index_of:
            raise source.error(f"line {line_number} has label {label!r}, which is not one of the given classes")
        youtube_id = row["youtube_id"].strip()
        start = source.parse_int(row["time_start"].strip(), f"line {line_number} time_start")
        end = source.parse_int(row["time_end"].strip(), f"line {line_number} time_end")
        name = kinetics_clip_name(youtube_id, start, end, video_suffix)
        clip_id = Path(name).stem
        if clip_id in line_of:
            raise source.error(f"line {line_number} repeats the clip {clip_id!r} of line {line_of[clip_id]}")
        line_of[clip_id] = line_number
        source.media_path(split_dir, name, f"line {line_number} youtube_id")  # each part stays inside the split
        source.media_path(split_dir, label, f"line {line_number} label")
        clips.append(
            VideoClip(
                id=clip_id,
                path=_clip_path(split_dir, label, name),
                label=index_of[label],
                youtube_id=youtube_id,
                time_start=start,
                time_end=end,
            )
        )
    return ClassificationSet(
        items=tuple(clips),
        split=split,
        annotation_files=(source.path,),
        class_ids=class_ids,
        class_names=class_ids,
        present_labels=tuple(sorted({clip.label for clip in clips})),
    )


def _clip_path(split_dir: Path, label: str, name: str) -> Path:
    """The first existing candidate location; the label-folder one when none exists (a missing clip is a skip)."""
    candidates = [split_dir / label / name, split_dir / label.replace(" ", "_") / name, split_dir / name]
    return next((path for path in candidates if path.is_file()), candidates[0])


__all__ = ["kinetics_clip_name", "read_kinetics"]
