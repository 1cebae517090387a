"""NLVR2: a sentence about a pair of photographs, true or false.

The format, from lil-lab/nlvr ``nlvr2/README.md``: ``{train,dev,test1}.json`` in the repository's ``nlvr2/data/``,
one JSON object per line with ``sentence``, ``left_url``, ``right_url``, ``label`` (``"True"``/``"False"``; the
official ``eval/metrics.py`` compares it case-insensitively) and ``identifier``
``split-set_id-pair_id-sentence_id``. The left and right images are ``split-set_id-pair_id-img0.png`` and ``-img1.png``
(some are JPEG bytes under ``.png``: images are decoded by content, :func:`coca_bench.data.load_image`). The image
archives unpack to ``dev/``, ``test1/`` and ``images/train/<n>/`` (the train images in numbered subfolders), so each
split's folder is searched recursively by file name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from coca_bench.data.annotations import AnnotationFile, DatasetNotFoundError, require_dataset_dir
from coca_bench.data.files import is_hidden
from coca_bench.data.records import RecordSet
from coca_bench.data.snli_ve import find_annotation, json_lines

ANNOTATION_FOLDERS: tuple[str, ...] = (".", "data", "nlvr2/data", "nlvr/nlvr2/data")
IMAGE_ROOTS: tuple[str, ...] = (".", "images", "nlvr2/images")  # each holds <split>/ (train: <split>/<n>/)
NLVR2_LABELS: tuple[str, ...] = ("False", "True")


@dataclass(frozen=True)
class Nlvr2Example:
    """A sentence and an image pair; ``label`` is whether the sentence is true of the pair.

    ``question`` and ``answers`` are what the report's ``answer`` view shows (the sentence, and the label).
    """

    identifier: str
    sentence: str
    label: bool
    left_path: Path
    right_path: Path

    @property
    def question(self) -> str:
        return self.sentence

    @property
    def answers(self) -> tuple[str, ...]:
        return (NLVR2_LABELS[self.label],)


def parse_identifier(identifier: str) -> tuple[str, str, int, int]:
    """``(split, set_id, pair_id, sentence_id)`` of ``split-set_id-pair_id-sentence_id``; ValueError otherwise."""
    parts = identifier.split("-")
    if len(parts) != 4 or not all(parts) or not (parts[2].isdigit() and parts[3].isdigit()):
        raise ValueError(identifier)
    return parts[0], parts[1], int(parts[2]), int(parts[3])


def _image_index(folder: Path) -> dict[str, Path]:
    """Every file under ``folder`` by name (the train images sit in numbered subfolders), hidden files and folders
    left out. Walked in sorted order, so that a name found twice resolves to the same file on every machine."""
    index: dict[str, Path] = {}
    for directory, folders, names in os.walk(folder):
        folders[:] = sorted(f for f in folders if not is_hidden(f))
        for name in sorted(names):
            if not is_hidden(name):
                index.setdefault(name, Path(directory) / name)
    return index


def find_split_images(root: Path, split: str, image_root: str | Path | None = None) -> Path:
    """The folder holding ``split``'s images: ``<image root>/<split>`` for the first image root that has it."""
    roots = [Path(root) / image_root] if image_root else [Path(root) / r for r in IMAGE_ROOTS]
    for place in roots:
        if (place / split).is_dir():
            return place / split
    raise DatasetNotFoundError(
        f"Cannot find the NLVR2 {split!r} images; searched {', '.join(str(p / split) for p in roots)}. Put the "
        "unpacked image folders in one of those places or pass --param image_root=PATH."
    )


def read_nlvr2(root: Path, split: str = "dev", image_root: str | Path | None = None) -> RecordSet[Nlvr2Example]:
    """The examples of ``split`` with their image paths (a missing image stays at its expected path: a skip)."""
    root = require_dataset_dir(Path(root), f"NLVR2's {split}.json and its {split}/ images")
    path = find_annotation(root, f"{split}.json", ANNOTATION_FOLDERS, "the NLVR2 annotation file")
    source = AnnotationFile(path, "the NLVR2 format (one JSON object per line; lil-lab/nlvr nlvr2/README.md)")
    rows = json_lines(source)
    folder = find_split_images(root, split, image_root)
    images = _image_index(folder)
    examples, first_line = [], {}
    for number, entry in rows:
        where = f"line {number}"
        identifier = source.text(entry, "identifier", where)
        try:
            parse_identifier(identifier)
        except ValueError:
            raise source.error(
                f"{where}.identifier {identifier!r} is not split-set_id-pair_id-sentence_id (pair and sentence ids "
                "are integers)"
            ) from None
        if identifier in first_line:
            raise source.error(f"{where} repeats the identifier {identifier!r} of line {first_line[identifier]}")
        first_line[identifier] = number
        label = source.field(entry, "label", where, str)
        if label.lower() not in ("true", "false"):
            raise source.error(f"{where}.label is {label!r}, not 'True' or 'False'")
        pair = identifier.rsplit("-", 1)[0]
        left, right = (f"{pair}-img{side}.png" for side in (0, 1))
        examples.append(
            Nlvr2Example(
                identifier=identifier,
                sentence=source.text(entry, "sentence", where),
                label=label.lower() == "true",
                left_path=images.get(left, folder / left),
                right_path=images.get(right, folder / right),
            )
        )
    return RecordSet(items=tuple(examples), split=split, annotation_files=(path,))


__all__ = [
    "ANNOTATION_FOLDERS",
    "IMAGE_ROOTS",
    "NLVR2_LABELS",
    "Nlvr2Example",
    "find_split_images",
    "parse_identifier",
    "read_nlvr2",
]
