"""Kinetics-style video classification (Kinetics-400, -600, -700): a split's csv plus trimmed clips.

The csv is the official one (``label,youtube_id,time_start,time_end,split``); a clip
file is ``<youtube_id>_<time_start:06d>_<time_end:06d>.mp4``, either in a folder per
label (``<split>/<label>/``, as most downloaders write; spaces in labels may also be
underscores) or directly in ``<split>/``. Class indices are the sorted label names,
the Kinetics convention; pass the training set's ``class_ids`` when reading the
evaluation split so both share one label space.

Copies differ in where the csv sits: ``annotations/<split>.csv`` (the CVDF k600 and k700-2020 downloaders) or
``<split>.csv`` beside ``<split>/`` (the CVDF k400 downloader, and many copies), either in the dataset folder itself
or in the folder the CVDF scripts create (``k400/``, ``k600/``, ``k700-2020/``; cvdfoundation/kinetics-dataset
``k*_downloader.sh``). The clips of a split are in ``<split>/`` next to wherever its csv was found.

DeepMind's own annotation archives unpack to ``kinetics400/``, ``kinetics600/`` or ``kinetics700_2020/`` holding
``train.csv``, ``validate.csv`` and ``test.csv`` only; the clips are downloaded beside that folder, into ``val/``
(as the usual download scripts are run) or ``validate/``. So the ``val`` split's csv may be named ``validate.csv``,
and its clips folder ``validate/``, and a split's clips may sit in the dataset folder next to the archive folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from coca_bench.data.annotations import AnnotationFile, DatasetNotFoundError, require_dataset_dir
from coca_bench.data.records import ClassificationSet, VideoClip

_COLUMNS = ("label", "youtube_id", "time_start", "time_end")
# The root folders cvdfoundation/kinetics-dataset's downloaders write (k400_downloader.sh, k600_downloader.sh,
# k700_2020_downloader.sh): a dataset folder may hold one of them rather than its contents.
KINETICS_ARCHIVE_FOLDERS = ("k400", "k600", "k700-2020")
# The folders DeepMind's annotation archives (kinetics400.tar.gz, kinetics600.tar.gz, kinetics700_2020.tar.gz) unpack to.
DEEPMIND_ARCHIVE_FOLDERS = ("kinetics400", "kinetics600", "kinetics700", "kinetics700_2020")
SPLIT_ALIASES = {"val": ("val", "validate")}  # DeepMind names the validation split "validate"


def kinetics_clip_name(youtube_id: str, time_start: int, time_end: int, suffix: str = ".mp4") -> str:
    return f"{youtube_id}_{time_start:06d}_{time_end:06d}{suffix}"


def find_in_download(root: Path, archive_folders: Sequence[str], relative_paths: Sequence[str], what: str) -> Path:
    """The first existing ``root/<relative>`` or ``root/<archive folder>/<relative>`` (the dataset folder holding the
    files, or the folder its archive unpacks to); a :class:`DatasetNotFoundError` listing every path tried if none."""
    places = [Path(root, *parent, relative) for parent in ((), *((a,) for a in archive_folders))
              for relative in relative_paths]  # fmt: skip
    found = next((place for place in places if place.is_file()), None)
    if found is None:
        raise DatasetNotFoundError(f"Cannot find {what}; tried {', '.join(str(p) for p in places)}.")
    return found


def find_kinetics_csv(root: Path, split: str) -> tuple[Path, Path]:
    """(the csv of ``split``, the folder holding the split's clips): ``annotations/<split>.csv`` or ``<split>.csv``
    beside ``<split>/``, in ``root`` or in a CVDF download folder inside it."""
    root = require_dataset_dir(Path(root), f"Kinetics annotations/{split}.csv and {split}/<label>/<clip>.mp4")
    names = SPLIT_ALIASES.get(split, (split,))
    found = find_in_download(root, (*KINETICS_ARCHIVE_FOLDERS, *DEEPMIND_ARCHIVE_FOLDERS),
                             [f"{place}{name}.csv" for name in names for place in ("annotations/", "")],
                             f"the Kinetics annotation csv for split {split!r}")  # fmt: skip
    base = found.parent.parent if found.parent.name == "annotations" else found.parent
    folders = [place / name for place in dict.fromkeys((base, root)) for name in names]
    return found, next((folder for folder in folders if folder.is_dir()), base / split)


def read_kinetics(
    root: Path, split: str = "val", classes: Sequence[str] | None = None, video_suffix: str = ".mp4"
) -> ClassificationSet[VideoClip]:
    """Clips of ``split`` in csv order, labelled by index into ``classes`` (default: the csv's sorted labels)."""
    csv_path, split_dir = find_kinetics_csv(root, split)
    source = AnnotationFile(csv_path, "the Kinetics csv with columns " + ",".join(_COLUMNS) + ",split")
    rows = source.read_csv(_COLUMNS)
    if not rows:
        raise source.error("has no rows")
    labels = [row["label"].strip() for row in rows]
    class_ids = tuple(classes) if classes is not None else tuple(sorted(set(labels)))
    index_of = {label: i for i, label in enumerate(class_ids)}
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


__all__ = [
    "DEEPMIND_ARCHIVE_FOLDERS",
    "KINETICS_ARCHIVE_FOLDERS",
    "find_in_download",
    "find_kinetics_csv",
    "kinetics_clip_name",
    "read_kinetics",
]
