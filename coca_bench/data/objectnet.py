"""ObjectNet (``objectnet-1.0.zip``) as CLIP_benchmark reads it (``clip_benchmark/datasets/objectnet.py``, from
wise-ft): ``objectnet-1.0/images/<folder>/<image>.png`` with ``objectnet-1.0/mappings/``
``folder_to_objectnet_label.json`` (folder -> ObjectNet label, 313 classes) and ``objectnet_to_imagenet_1k.json``
(ObjectNet label -> the ImageNet-1k class names it covers, joined by ``"; "``; 113 labels).

The classes are the ObjectNet labels that map to ImageNet, in sorted folder order, named by their ObjectNet label in
lower case; images of the other labels are not part of the test set. The archive folder may also have been unpacked
with its contents directly in the dataset folder (``images/``, ``mappings/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coca_bench.data.annotations import AnnotationFile, DatasetLayoutError, DatasetNotFoundError, require_dataset_dir
from coca_bench.data.files import image_files, is_hidden
from coca_bench.data.records import ClassificationSample, ClassificationSet

ARCHIVE_FOLDER = "objectnet-1.0"
FOLDER_LABELS_FILE = "mappings/folder_to_objectnet_label.json"
IMAGENET_MAPPING_FILE = "mappings/objectnet_to_imagenet_1k.json"
_LAYOUT = (
    f"ObjectNet as it unpacks: {ARCHIVE_FOLDER}/images/<folder>/<image>.png, {ARCHIVE_FOLDER}/{FOLDER_LABELS_FILE} "
    f"and {ARCHIVE_FOLDER}/{IMAGENET_MAPPING_FILE}"
)


@dataclass(frozen=True)
class ObjectNetMapping:
    """``folder_of``: ObjectNet label -> image folder (every label); ``imagenet_names``: ObjectNet label -> the
    ImageNet-1k class names it maps to (only the labels that map, in the file's order)."""

    folder_of: dict[str, str]
    imagenet_names: dict[str, tuple[str, ...]]
    files: tuple[Path, Path]


def find_objectnet(root: Path) -> Path:
    """The folder holding ``images/`` and ``mappings/``: ``<root>/objectnet-1.0`` as the archive unpacks, or
    ``<root>`` itself; the error names both paths searched."""
    root = require_dataset_dir(Path(root), _LAYOUT)
    searched = (root / ARCHIVE_FOLDER, root)
    for base in searched:
        if (base / FOLDER_LABELS_FILE).is_file():
            return base
    raise DatasetNotFoundError(
        f"Found no ObjectNet mappings: searched {searched[0] / FOLDER_LABELS_FILE} (as the archive unpacks) and "
        f"{searched[1] / FOLDER_LABELS_FILE} (its contents placed directly); expected {_LAYOUT}."
    )


def _string_object(source: AnnotationFile, what: str) -> dict[str, str]:
    """The file's JSON object, every key and value a non-empty string."""
    data = source.load_json()
    if not isinstance(data, dict):
        raise source.error(f"the top level is a JSON {type(data).__name__}, not an object of {what}")
    for key, value in data.items():
        if not isinstance(value, str) or not value.strip():
            raise source.error(f"key {key!r} maps to {value!r}, not a non-empty string")
    return data


def read_objectnet_mapping(base: Path) -> ObjectNetMapping:
    """The two mapping files of ``base/mappings``, cross-checked: every mapped label must name a folder."""
    labels_source = AnnotationFile(base / FOLDER_LABELS_FILE, "a JSON object of image folder -> ObjectNet label")
    imagenet_source = AnnotationFile(
        base / IMAGENET_MAPPING_FILE, "a JSON object of ObjectNet label -> ImageNet class names joined by '; '"
    )
    folder_labels = _string_object(labels_source.require_exists(_LAYOUT), "folder -> label")
    folder_of: dict[str, str] = {}
    for folder, label in folder_labels.items():
        if label in folder_of:
            raise labels_source.error(f"key {folder!r} repeats label {label!r} of folder {folder_of[label]!r}")
        folder_of[label] = folder
    imagenet_names: dict[str, tuple[str, ...]] = {}
    for label, names in _string_object(imagenet_source.require_exists(_LAYOUT), "label -> names").items():
        if label not in folder_of:
            raise imagenet_source.error(f"key {label!r} is not a label of {labels_source.path.name}")
        imagenet_names[label] = tuple(name.strip() for name in names.split("; "))
    return ObjectNetMapping(folder_of, imagenet_names, (labels_source.path, imagenet_source.path))


def read_objectnet(root: Path) -> ClassificationSet:
    """The images of the ObjectNet classes that map to ImageNet-1k, sorted by file name; every class of the mapping
    is in the label space, present or not."""
    base = find_objectnet(root)
    mapping = read_objectnet_mapping(base)
    images = base / "images"
    if not images.is_dir():
        raise DatasetNotFoundError(f"ObjectNet image folder {images} does not exist; expected {_LAYOUT}.")
    known = set(mapping.folder_of.values())
    folders = sorted(p for p in images.iterdir() if p.is_dir() and not is_hidden(p.name))
    unknown = [p.name for p in folders if p.name not in known]
    if unknown:
        raise DatasetLayoutError(
            f"{images} has folder(s) {unknown[:5]} that {mapping.files[0]} does not name; expected one folder per "
            f"ObjectNet label of that file."
        )
    label_of_folder = {mapping.folder_of[label]: label for label in mapping.imagenet_names}
    class_ids = tuple(sorted(label_of_folder))  # CLIP_benchmark: label = index in the sorted folder names
    index = {folder: i for i, folder in enumerate(class_ids)}
    samples = []
    for folder in folders:
        if folder.name not in index:
            continue  # an ObjectNet class with no ImageNet counterpart: not scored
        samples += [ClassificationSample(id=f"{folder.name}/{path.stem}", path=path, label=index[folder.name])
                    for path in image_files(folder)]  # fmt: skip
    samples.sort(key=lambda s: (s.path.name, s.path.parent.name))  # hashed names interleave the classes
    return ClassificationSet(
        items=tuple(samples),
        split="images",
        annotation_files=mapping.files,
        class_ids=class_ids,
        class_names=tuple(label_of_folder[folder].lower() for folder in class_ids),
        present_labels=tuple(sorted({s.label for s in samples})),
    )


__all__ = ["ObjectNetMapping", "find_objectnet", "read_objectnet", "read_objectnet_mapping"]
