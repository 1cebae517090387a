"""Moments in Time: ``trainingSet.csv`` / ``validationSet.csv``, ``moments_categories.txt`` and the clips in
``training/<class>/`` and ``validation/<class>/``.

The format, from the README.txt the dataset ships and open-mmlab/mmaction2 ``tools/data/parse_file_list.py``
(``parse_mit_splits``):

- the split csvs have no header; a row is ``filename,label,positive responses,negative responses``, the filename
  ``<class>/<video>.mp4`` relative to the split folder ("blocking/getty-karate-video-id635808620_4.mp4" lies at
  "training/blocking/getty-karate-video-id635808620_4.mp4");
- ``moments_categories.txt`` holds one ``name,index`` line per class: the label indices;
- class names write spaces as ``+`` (``adult+female+singing``): ``class_ids`` keep them, ``class_names`` are words.

The dataset folder holds these files, or the folder the archive unpacks to (``Moments_in_Time_Raw/``,
``Moments_in_Time_256x256_30fps/``), or mmaction2's arrangement (``tools/data/mit/download_data.sh``: the csvs and
categories in ``annotations/``, the split folders in ``videos/``). The categories file is the one beside the csv.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path, PurePosixPath

from coca_bench.data.annotations import AnnotationFile, require_dataset_dir
from coca_bench.data.kinetics import find_in_download
from coca_bench.data.records import ClassificationSet, VideoClip

MOMENTS_SPLIT_FILES = {"training": "trainingSet.csv", "validation": "validationSet.csv"}
CATEGORIES_FILE = "moments_categories.txt"
# The folders the official zips unpack to (data.csail.mit.edu/soundnet/actions3/split1/<name>.zip).
MOMENTS_ARCHIVE_FOLDERS = ("Moments_in_Time_Raw", "Moments_in_Time_256x256_30fps")
_ROW_FORMAT = "Moments in Time rows 'class/video.mp4,label,positive responses,negative responses' without a header"


def read_moments_categories(path: Path) -> tuple[str, ...]:
    """The class names of ``moments_categories.txt`` in index order; the indices must be 0..N-1, each once."""
    source = AnnotationFile(path, "one 'name,index' line per class, indices 0..N-1").require_exists(
        "the Moments in Time class list"
    )
    name_at: dict[int, str] = {}
    line_of: dict[str, int] = {}
    index_line: dict[int, int] = {}
    for line_number, line in enumerate(source.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != 2 or not fields[1].strip():
            raise source.error(f"line {line_number} ({line.strip()!r}) is not a class name and an index")
        name = fields[0].strip()
        index = source.parse_int(fields[1].strip(), f"line {line_number} index")
        if not name:
            raise source.error(f"line {line_number} has an empty class name")
        if name in line_of:
            raise source.error(f"line {line_number} repeats the class {name!r} of line {line_of[name]}")
        if index in index_line:
            raise source.error(f"line {line_number} repeats the index {index} of line {index_line[index]}")
        line_of[name], index_line[index], name_at[index] = line_number, line_number, name
    if not name_at:
        raise source.error("has no classes")
    missing = sorted(set(range(len(name_at))) - set(name_at))
    if missing:
        raise source.error(
            f"the indices of {len(name_at)} classes must be 0..{len(name_at) - 1}, but {missing[0]} is missing"
        )
    return tuple(name_at[i] for i in range(len(name_at)))


def read_moments(root: Path, split: str = "validation") -> ClassificationSet[VideoClip]:
    """The clips of ``split`` (``training`` or ``validation``) in csv order, labelled by the categories' indices."""
    if split not in MOMENTS_SPLIT_FILES:
        raise ValueError(f"Moments in Time has the splits {sorted(MOMENTS_SPLIT_FILES)}, not {split!r}.")
    csv_name = MOMENTS_SPLIT_FILES[split]
    root = require_dataset_dir(Path(root), f"Moments in Time {csv_name}, {CATEGORIES_FILE} and {split}/<class>/")
    found = find_in_download(root, MOMENTS_ARCHIVE_FOLDERS, (csv_name, f"annotations/{csv_name}"),
                             f"the Moments in Time {split} csv")  # fmt: skip
    class_ids = read_moments_categories(found.parent / CATEGORIES_FILE)
    index_of = {name: i for i, name in enumerate(class_ids)}
    base = found.parent.parent if found.parent.name == "annotations" else found.parent
    split_dir = next((d for d in (base / split, base / "videos" / split) if d.is_dir()), base / split)

    source = AnnotationFile(found, _ROW_FORMAT)
    clips = []
    line_of: dict[str, int] = {}  # clip id -> line, for duplicates
    try:
        rows = list(csv.reader(io.StringIO(source.read_text(), newline="")))
    except csv.Error as exc:
        raise source.error(f"is not valid CSV ({exc})") from None
    for line_number, row in enumerate(rows, start=1):
        if not any(field.strip() for field in row):
            continue
        if len(row) < 2:
            raise source.error(f"line {line_number} has one field, no label")
        filename, label = row[0].strip(), row[1].strip()
        if label not in index_of:
            raise source.error(f"line {line_number} has label {label!r}, which is not a class of {CATEGORIES_FILE}")
        if not filename:
            raise source.error(f"line {line_number} has an empty filename")
        path = source.media_path(split_dir, filename, f"line {line_number} filename")
        clip_id = str(PurePosixPath(filename).with_suffix(""))
        if clip_id in line_of:
            raise source.error(f"line {line_number} repeats the clip {clip_id!r} of line {line_of[clip_id]}")
        line_of[clip_id] = line_number
        clips.append(VideoClip(id=clip_id, path=path, label=index_of[label]))
    if not clips:
        raise source.error("has no rows")
    return ClassificationSet(
        items=tuple(clips),
        split=split,
        annotation_files=(source.path, found.parent / CATEGORIES_FILE),
        class_ids=class_ids,
        class_names=tuple(name.replace("+", " ") for name in class_ids),
        present_labels=tuple(sorted({clip.label for clip in clips})),
    )


__all__ = [
    "CATEGORIES_FILE",
    "MOMENTS_ARCHIVE_FOLDERS",
    "MOMENTS_SPLIT_FILES",
    "read_moments",
    "read_moments_categories",
]
