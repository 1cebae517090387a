"""Plain records produced by the dataset readers.

Records hold paths, never decoded pixels, so reading a dataset is cheap and a bad
media file surfaces only when a task opens it (as a recorded skip). Every record
set carries the annotation files it was read from, for the runner's dataset
fingerprint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

Item = TypeVar("Item")
Records = TypeVar("Records", bound="RecordSet")


@dataclass(frozen=True)
class ClassificationSample:
    """An image with its class index (in the full label space of its record set)."""

    id: str
    path: Path
    label: int


@dataclass(frozen=True)
class VideoClip:
    """A classification video clip, Kinetics style (a trimmed segment of a YouTube video)."""

    id: str
    path: Path
    label: int
    youtube_id: str = ""
    time_start: int = 0
    time_end: int = 0


@dataclass(frozen=True)
class ImageCaptions:
    """An image with its reference captions. ``domain`` is NoCaps' in-/near-/out-domain, else None."""

    id: str
    path: Path
    captions: tuple[str, ...]
    domain: str | None = None


@dataclass(frozen=True)
class VideoCaptions:
    """A video with its reference captions (one for MSR-VTT 1k-A, all of them for the full split)."""

    id: str
    path: Path
    captions: tuple[str, ...]


@dataclass(frozen=True)
class VqaQuestion:
    """A VQA v2 question; ``answers`` holds the 10 human answers (empty for test splits)."""

    question_id: int
    image_id: int
    image_path: Path
    question: str
    answers: tuple[str, ...]
    answer_type: str | None = None
    question_type: str | None = None
    multiple_choice_answer: str | None = None


@dataclass(frozen=True)
class RecordSet(Generic[Item]):
    """The records of one split of one dataset, and the annotation files they came from."""

    items: tuple[Item, ...]
    split: str
    annotation_files: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def head(self: Records, limit: int | None) -> Records:
        """The first ``limit`` records (all when ``limit`` is None), same metadata: for ``--limit`` runs."""
        if limit is None or limit >= len(self.items):
            return self
        if limit < 0:
            raise ValueError(f"limit must be non-negative, got {limit}.")
        return dataclasses.replace(self, items=self.items[:limit])


@dataclass(frozen=True)
class ClassificationSet(RecordSet[Item]):
    """Classification records plus the label space.

    ``class_ids`` (wnids, Kinetics labels) and ``class_names`` span the full label
    space; ``labels`` of the items index into it. ``present_labels`` lists the classes
    this split actually covers: for a subset dataset (ImageNet-A/-R style, 200 of the
    1000 wnids) the task restricts its logits to them.
    """

    class_ids: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    present_labels: tuple[int, ...] = ()


@dataclass(frozen=True)
class CaptionSet(RecordSet[Item]):
    """Images (:class:`ImageCaptions`) or videos (:class:`VideoCaptions`) with reference captions."""


@dataclass(frozen=True)
class VqaSet(RecordSet[VqaQuestion]):
    """VQA questions; ``has_answers`` is False for test splits, which have no public annotations."""

    has_answers: bool = True


__all__ = [
    "CaptionSet",
    "ClassificationSample",
    "ClassificationSet",
    "ImageCaptions",
    "RecordSet",
    "VideoCaptions",
    "VideoClip",
    "VqaQuestion",
    "VqaSet",
]
