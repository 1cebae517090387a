"""ImageNet-style classification folders: ``<root>/<split>/<wnid>/<image>``, or ``<root>/<split>/<index>/<image>``
as ImageNet-V2 ships (folder ``0``..``999`` is the label itself; sorting the names would scramble the labels).

The label space comes from ``<root>/LOC_synset_mapping.txt`` (the Kaggle ImageNet
format: ``<wnid> <names>`` per line, in label order) when present; otherwise it is
the standard 1000 ImageNet classes: the sorted wnids bundled in
``imagenet_wnids.txt`` with open_clip's CLIP-curated ``IMAGENET_CLASSNAMES``, the
names the zero-shot protocol uses. A mapping file listing exactly the standard 1000
wnids also gets the CLIP names, so the real ImageNet scores by the protocol either way.

Subset datasets (ImageNet-A, ImageNet-R: 200 wnid folders) keep labels in the full
label space; ``present_labels`` names the classes the split covers, and
:func:`official_subset_wnids` the official 200-class lists, so the task can restrict its
logits to them as CLIP_benchmark does.

The class folders sit in ``<root>/<split>`` as the archive unpacks (``val/``,
``imagenet-a/``, ``sketch/``, ``imagenetv2-matched-frequency-format-val/``), or directly
in ``<root>`` when its contents were placed there.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache
from pathlib import Path
from types import ModuleType

from coca_bench.data.annotations import (
    AnnotationFile,
    DatasetLayoutError,
    DatasetNotFoundError,
    require_dataset_dir,
)
from coca_bench.data.files import IMAGE_SUFFIXES, image_files, is_hidden
from coca_bench.data.records import ClassificationSample, ClassificationSet

SYNSET_MAPPING_FILE = "LOC_synset_mapping.txt"
IMAGENET_WNIDS_FILE = Path(__file__).with_name("imagenet_wnids.txt")
# The official class subsets of the 1,000 ImageNet-1k classes, by name (each file cites its sources).
OFFICIAL_SUBSET_FILES: dict[str, Path] = {
    "imagenet_a": Path(__file__).with_name("imagenet_a_wnids.txt"),
    "imagenet_r": Path(__file__).with_name("imagenet_r_wnids.txt"),
}
_LAYOUT = "ImageNet folders <split>/<wnid>/<image> (e.g. val/n01440764/ILSVRC2012_val_00000293.JPEG)"


@lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k wnids in sorted order: index = the standard label."""
    return tuple(IMAGENET_WNIDS_FILE.read_text(encoding="utf-8").split())


@lru_cache(maxsize=1)
def open_clip_zero_shot_metadata() -> ModuleType:
    """open_clip's ``zero_shot_metadata`` (CLIP's class names and prompt templates), loaded from its file on its own:
    ``import open_clip`` imports torch, and a rerun that only checks its stored results should not."""
    import importlib.util

    package = importlib.util.find_spec("open_clip")
    if package is None or not package.submodule_search_locations:
        raise DatasetNotFoundError("ImageNet's class names come from open_clip; install open_clip_torch.")
    path = Path(list(package.submodule_search_locations)[0]) / "zero_shot_metadata.py"
    spec = importlib.util.spec_from_file_location("coca_bench._open_clip_zero_shot_metadata", path)
    if spec is None or spec.loader is None:
        raise DatasetNotFoundError(f"Cannot read open_clip's class names from {path}; reinstall open_clip_torch.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def official_subset_wnids(name: str) -> frozenset[str]:
    """The wnids of an official ImageNet class subset (``imagenet_a``, ``imagenet_r``: 200 classes each)."""
    lines = OFFICIAL_SUBSET_FILES[name].read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def imagenet_classnames() -> tuple[str, ...]:
    """open_clip's CLIP-curated names for the 1000 classes."""
    return tuple(open_clip_zero_shot_metadata().IMAGENET_CLASSNAMES)


def read_synset_mapping(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(wnids, names) from a ``LOC_synset_mapping.txt``; a name is the first synonym of its line."""
    source = AnnotationFile(Path(path), "the Kaggle ImageNet format, one '<wnid> <class name>' per line")
    wnids: list[str] = []
    names: list[str] = []
    try:
        lines = source.path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise source.error("is not UTF-8 text") from None
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        wnid, _, rest = line.strip().partition(" ")
        name = rest.split(",")[0].strip()
        if not name:
            raise source.error(f"line {line_number} ({line.strip()!r}) has no class name after the wnid")
        if wnid in wnids:
            raise source.error(f"line {line_number} repeats wnid {wnid!r}")
        wnids.append(wnid)
        names.append(name)
    if not wnids:
        raise source.error("has no classes")
    return tuple(wnids), tuple(names)


def read_imagenet(root: Path, split: str = "val", classes: Sequence[str] | None = None) -> ClassificationSet:
    """The images of ``<root>/<split>``, sorted by file name (the official val order mixes classes).

    ``classes``: wnids to keep (e.g. the 200 of ImageNet-A); by default every class
    folder present. Labels always index the full label space.
    """
    root = require_dataset_dir(Path(root), _LAYOUT)
    mapping_path = root / SYNSET_MAPPING_FILE
    if mapping_path.is_file():
        wnids, names = read_synset_mapping(mapping_path)
        annotation_files: tuple[Path, ...] = (mapping_path, IMAGENET_WNIDS_FILE)  # both decide the class names
        if wnids == imagenet_wnids():
            names = imagenet_classnames()
    else:
        wnids, names = imagenet_wnids(), imagenet_classnames()
        annotation_files = (IMAGENET_WNIDS_FILE,)
    label_of = {wnid: index for index, wnid in enumerate(wnids)}
    label_source = str(mapping_path) if mapping_path.is_file() else "the standard ImageNet-1k wnids"

    split_dir = _class_folders_dir(root, split, label_of)
    folders = sorted(p for p in split_dir.iterdir() if p.is_dir() and not is_hidden(p.name))
    if not folders:
        loose = [p.name for p in split_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not is_hidden(p.name)]
        hint = f" It holds {len(loose)} images directly; move each into its wnid folder." if loose else ""
        raise DatasetLayoutError(f"{split_dir} has no class folders; expected {_LAYOUT}.{hint}")
    if all(p.name.isdigit() for p in folders):  # ImageNet-V2: folders named by label index (0..999), not by wnid
        out_of_range = [p.name for p in folders if int(p.name) >= len(wnids)]
        if out_of_range:
            raise DatasetLayoutError(
                f"{split_dir} has class folder(s) {out_of_range[:5]} named by an index outside the "
                f"{len(wnids)} classes of {label_source}; expected folders 0..{len(wnids) - 1}."
            )
        label_of = {**label_of, **{p.name: int(p.name) for p in folders}}
        folder_wnid = {p.name: wnids[int(p.name)] for p in folders}
    else:
        folder_wnid = {p.name: p.name for p in folders}
    unknown = [p.name for p in folders if p.name not in label_of]
    if unknown:
        raise DatasetLayoutError(
            f"{split_dir} has class folder(s) {unknown[:5]} that are not classes of {label_source}; "
            f"expected one folder per wnid of that label space (or one per label index, as ImageNet-V2 ships)."
        )

    wanted = set(classes) if classes is not None else None
    if wanted is not None:
        not_in_space = sorted(wanted - set(label_of))
        if not_in_space:
            raise ValueError(f"classes {not_in_space[:5]} are not in the label space of {label_source}.")
    samples = []
    for folder in folders:
        if wanted is not None and folder_wnid[folder.name] not in wanted:
            continue
        label = label_of[folder.name]
        samples += [ClassificationSample(id=f"{folder.name}/{image.stem}", path=image, label=label)
                    for image in image_files(folder)]  # fmt: skip
    samples.sort(key=lambda s: (s.path.name, s.path.parent.name))
    return ClassificationSet(
        items=tuple(samples),
        split=split,
        annotation_files=annotation_files,
        class_ids=wnids,
        class_names=names,
        present_labels=tuple(sorted({s.label for s in samples})),
    )


def _class_folders_dir(root: Path, split: str, label_of: dict[str, int]) -> Path:
    """``<root>/<split>`` as the archive unpacks, else ``<root>`` itself when it holds class folders (wnids of the
    label space, or label indices): the archive's contents placed directly in the dataset folder."""
    split_dir = root / split
    if split_dir.is_dir():
        return split_dir
    if any(p.is_dir() and (p.name in label_of or p.name.isdigit()) for p in root.iterdir() if not is_hidden(p.name)):
        return root
    raise DatasetNotFoundError(
        f"Found no ImageNet class folders: searched {split_dir} (as the archive unpacks) and {root} (its contents "
        f"placed directly); expected {_LAYOUT}."
    )


__all__ = [
    "OFFICIAL_SUBSET_FILES",
    "imagenet_classnames",
    "imagenet_wnids",
    "is_hidden",
    "official_subset_wnids",
    "open_clip_zero_shot_metadata",
    "read_imagenet",
    "read_synset_mapping",
]
