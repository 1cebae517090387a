"""SNLI-VE (visual entailment): ``snli_ve_{train,dev,test}.jsonl`` over Flickr30K images.

The format, from necla-ml/SNLI-VE ``vet/tools/snli_ve_parser.py``: one JSON object per line with ``Flikr30kID`` (the
Flickr30K image, misspelt as shipped; the repository's ``snli_ve_generator.py`` writes it as ``<id>.jpg``),
``gold_label`` (``entailment``, ``neutral`` or ``contradiction``: the majority of ``annotator_labels``; lines with
no majority, ``-``, were filtered out when the dataset was made), ``sentence2`` (the hypothesis) and ``pairID``.
``sentence1`` is SNLI's text premise, "not used in our VE task": the reader keeps it on the record (it is part of the
shipped pair) but no task gives it to a model.

The jsonl files sit in the dataset folder, or in ``data/`` as the repository's generator writes them, or in the
repository's own folder ``SNLI-VE/data/``; the images are found by the task (a Flickr30K image folder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from coca_bench.data.annotations import AnnotationFile, DatasetNotFoundError, require_dataset_dir
from coca_bench.data.records import RecordSet

SNLI_VE_LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
ANNOTATION_FOLDERS: tuple[str, ...] = (".", "data", "SNLI-VE/data", "SNLI-VE")


@dataclass(frozen=True)
class VisualEntailmentPair:
    """An (image premise, text hypothesis) pair; ``label`` indexes :data:`SNLI_VE_LABELS`.

    ``premise`` is SNLI's text premise (``sentence1``): never model input. ``question`` and ``answers`` are what the
    report's ``answer`` view shows (the hypothesis, and the gold label as the one human answer).
    """

    id: str
    image_path: Path
    hypothesis: str
    label: int
    premise: str = ""

    @property
    def gold_label(self) -> str:
        return SNLI_VE_LABELS[self.label]

    @property
    def question(self) -> str:
        return self.hypothesis

    @property
    def answers(self) -> tuple[str, ...]:
        return (self.gold_label,)


@dataclass(frozen=True)
class VisualEntailmentSet(RecordSet[VisualEntailmentPair]):
    class_names: tuple[str, ...] = SNLI_VE_LABELS


def find_annotation(root: Path, name: str, folders: tuple[str, ...], what: str) -> Path:
    """``root/<folder>/name`` for the first folder that has it; the error lists every path searched."""
    places = [Path(root) / folder / name for folder in folders]
    for place in places:
        if place.is_file():
            return place
    raise DatasetNotFoundError(
        f"Cannot find {what} {name}; searched {', '.join(str(p) for p in places)}. Put it in one of those places."
    )


def json_lines(source: AnnotationFile) -> list[tuple[int, Any]]:
    """``(line number, object)`` for every non-blank line of a JSON-lines file; a line that is not a JSON object is
    an error naming the file and the line."""
    rows = []
    for number, line in enumerate(source.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise source.error(f"line {number} is not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(value, dict):
            raise source.error(f"line {number} is not a JSON object")
        rows.append((number, value))
    return rows


def read_snli_ve(root: Path, split: str = "dev") -> VisualEntailmentSet:
    """The pairs of ``split``; each image path is ``root / <Flikr30kID>`` until the task locates the image folder."""
    root = require_dataset_dir(Path(root), f"SNLI-VE's snli_ve_{split}.jsonl (and Flickr30K images)")
    path = find_annotation(root, f"snli_ve_{split}.jsonl", ANNOTATION_FOLDERS, "the SNLI-VE annotation file")
    source = AnnotationFile(path, "the SNLI-VE format (one JSON object per line; necla-ml/SNLI-VE)")
    pairs, first_line = [], {}
    for number, entry in json_lines(source):
        where = f"line {number}"
        pair_id = source.text(entry, "pairID", where)
        if pair_id in first_line:
            raise source.error(f"{where} repeats the pairID {pair_id!r} of line {first_line[pair_id]}")
        first_line[pair_id] = number
        gold = source.field(entry, "gold_label", where, str)
        if gold not in SNLI_VE_LABELS:
            raise source.error(f"{where}.gold_label is {gold!r}, not one of {list(SNLI_VE_LABELS)}")
        image = source.text(entry, "Flikr30kID", where)
        image = image if PurePosixPath(image).suffix else f"{image}.jpg"  # the later generator drops ".jpg"
        pairs.append(
            VisualEntailmentPair(
                id=pair_id,
                image_path=source.media_path(root, image, f"{where}.Flikr30kID"),
                hypothesis=source.text(entry, "sentence2", where),
                label=SNLI_VE_LABELS.index(gold),
                premise=source.optional_field(entry, "sentence1", where, str) or "",
            )
        )
    return VisualEntailmentSet(items=tuple(pairs), split=split, annotation_files=(path,))


__all__ = [
    "ANNOTATION_FOLDERS",
    "SNLI_VE_LABELS",
    "VisualEntailmentPair",
    "VisualEntailmentSet",
    "find_annotation",
    "json_lines",
    "read_snli_ve",
]
