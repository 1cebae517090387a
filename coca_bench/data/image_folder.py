"""Generic ImageFolder-style classification data: ``<root>/<split>/<class name>/<image>``.

For any dataset a linear probe should run on (CIFAR exported to folders, Food-101, a private set): the label space
is the sorted class-folder names of the training split (``classes``), so train and evaluation splits share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from coca_bench.data.annotations import DatasetLayoutError, DatasetNotFoundError, require_dataset_dir
from coca_bench.data.files import image_files, is_hidden
from coca_bench.data.records import ClassificationSample, ClassificationSet

_LAYOUT = "ImageFolder folders <split>/<class name>/<image> (e.g. train/cat/0001.jpg)"


def image_folder_classes(root: Path, split: str) -> tuple[str, ...]:
    """The sorted class-folder names of ``<root>/<split>``: the label space."""
    split_dir = require_dataset_dir(Path(root), _LAYOUT) / split
    if not split_dir.is_dir():
        raise DatasetNotFoundError(f"Split folder {split_dir} does not exist; expected {_LAYOUT}.")
    classes = tuple(sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not is_hidden(p.name)))
    if not classes:
        raise DatasetLayoutError(f"{split_dir} has no class folders; expected {_LAYOUT}.")
    return classes


def read_image_folder(root: Path, split: str, classes: Sequence[str] | None = None) -> ClassificationSet:
    """The images of ``<root>/<split>``, sorted by class then file name; labels index ``classes``.

    ``classes`` defaults to this split's own folders; pass the training split's to score another split in the same
    label space (a class folder outside it is an error, never a silently wrong label).
    """
    classes = tuple(classes) if classes is not None else image_folder_classes(root, split)
    split_dir = Path(root) / split
    present = image_folder_classes(root, split)
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise DatasetLayoutError(f"{split_dir} has class folder(s) {unknown[:5]} that the training split lacks.")
    label_of = {name: index for index, name in enumerate(classes)}
    samples = []
    for name in present:
        samples += [
            ClassificationSample(id=f"{name}/{f.stem}", path=f, label=label_of[name])
            for f in image_files(split_dir / name)
        ]
    return ClassificationSet(
        items=tuple(samples),
        split=split,
        annotation_files=(),
        class_ids=classes,
        class_names=classes,
        present_labels=tuple(sorted({s.label for s in samples})),
    )


def read_train_eval_splits(
    root: Path, train_split: str, eval_split: str, layout: str
) -> tuple[ClassificationSet, ClassificationSet]:
    """The training split and the evaluated split of a classification dataset, in one label space.

    ``layout``: ``imagenet`` (wnid folders, :func:`read_imagenet`'s label space) or ``folder`` (any class names, the
    training split's). ``eval_split="auto"``: ``val`` when present, else ``test``.
    """
    from coca_bench.data.imagenet import read_imagenet

    if eval_split == "auto":
        eval_split = "val" if (Path(root) / "val").is_dir() else "test"
    if layout == "imagenet":
        return read_imagenet(root, train_split), read_imagenet(root, eval_split)
    if layout == "folder":
        train = read_image_folder(root, train_split)
        return train, read_image_folder(root, eval_split, classes=train.class_ids)
    raise ValueError(f"layout must be 'imagenet' or 'folder', not {layout!r}.")


__all__ = ["image_folder_classes", "read_image_folder", "read_train_eval_splits"]
