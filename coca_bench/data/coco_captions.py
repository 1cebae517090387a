"""COCO-format caption annotations: COCO ``captions_val2014.json`` and NoCaps.

The file's ``images`` define the records (``id``, ``file_name``; NoCaps adds
``domain``) and its ``annotations`` the reference captions. A file without
``annotations`` (NoCaps test image info) yields records with no captions: they can
be captioned for a server submission but not scored locally.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from coca_bench.data.annotations import AnnotationFile, AnnotationFormatError, require_dataset_dir
from coca_bench.data.records import CaptionSet, ImageCaptions

COCO_CAPTIONS_FILE = "annotations/captions_val2014.json"
COCO_IMAGE_DIR = "val2014"
NOCAPS_FILES = {
    "val": ("nocaps_val_4500_captions.json", "validation"),
    "test": ("nocaps_test_image_info.json", "test"),
}
NOCAPS_DOMAINS = ("in-domain", "near-domain", "out-domain")


def read_coco_captions(
    annotation_file: Path,
    image_dir: Path,
    image_ids: Collection[int] | None = None,
    split: str = "",
) -> CaptionSet[ImageCaptions]:
    """Images of a COCO-format caption file with their captions, in the file's image order.

    ``image_ids`` restricts the records (e.g. to the Karpathy test images); every
    requested id must be in the file.
    """
    source = AnnotationFile(Path(annotation_file), "the COCO captions format (images, annotations)")
    source.require_exists(f"a COCO-format caption file with its images in {image_dir}")
    payload = source.load_json()
    images = source.objects(payload, "images")
    first_of: dict[int, int] = {}  # image id -> index in 'images'
    for index, image in enumerate(images):
        image_id = source.field(image, "id", f"images[{index}]", int)
        if image_id in first_of:
            raise source.error(f"images[{index}] repeats the id {image_id} of images[{first_of[image_id]}]")
        first_of[image_id] = index
    known_ids = set(first_of)
    captions: dict[int, list[str]] = {}
    has_annotations = isinstance(payload, dict) and "annotations" in payload
    for index, annotation in enumerate(source.objects(payload, "annotations") if has_annotations else []):
        where = f"annotations[{index}]"
        image_id = source.field(annotation, "image_id", where, int)
        caption = source.text(annotation, "caption", where)
        if image_id not in known_ids:
            raise source.error(f"{where}.image_id {image_id} is not the id of any entry of 'images'")
        captions.setdefault(image_id, []).append(caption)

    wanted = None if image_ids is None else {int(i) for i in image_ids}
    if wanted is not None and not wanted <= known_ids:
        missing = sorted(wanted - known_ids)
        raise AnnotationFormatError(
            f"{source.path} has no images with id(s) {missing[:5]} ({len(missing)} in all) of the {len(wanted)} requested; "
            f"use the caption file that covers those images."
        )
    items = []
    for index, image in enumerate(images):
        where = f"images[{index}]"
        image_id = image["id"]
        if wanted is not None and image_id not in wanted:
            continue
        file_name = source.field(image, "file_name", where, str)
        domain = source.optional_field(image, "domain", where, str)
        if has_annotations and image_id not in captions:
            raise source.error(f"{where} (id {image_id}) has no caption in 'annotations'")
        items.append(
            ImageCaptions(
                id=str(image_id),
                path=source.media_path(Path(image_dir), file_name, f"{where}.file_name"),
                captions=tuple(captions.get(image_id, ())),
                domain=domain,
            )
        )
    return CaptionSet(items=tuple(items), split=split, annotation_files=(source.path,))


def read_coco_val_captions(root: Path, image_ids: Collection[int] | None = None) -> CaptionSet[ImageCaptions]:
    """COCO 2014 val captions (``<root>/annotations/captions_val2014.json``, images in ``<root>/val2014``)."""
    root = require_dataset_dir(Path(root), f"COCO's {COCO_CAPTIONS_FILE} and {COCO_IMAGE_DIR}/")
    return read_coco_captions(root / COCO_CAPTIONS_FILE, root / COCO_IMAGE_DIR, image_ids, split="val2014")


def read_nocaps(root: Path, split: str = "val") -> CaptionSet[ImageCaptions]:
    """NoCaps images with their 10 captions and ``domain`` (in-/near-/out-domain)."""
    if split not in NOCAPS_FILES:
        raise ValueError(f"Unknown NoCaps split {split!r}; use one of {sorted(NOCAPS_FILES)}.")
    file_name, image_dir = NOCAPS_FILES[split]
    root = require_dataset_dir(Path(root), f"NoCaps' {file_name} and {image_dir}/")
    records = read_coco_captions(root / file_name, root / image_dir, split=split)
    for index, item in enumerate(records.items):  # NoCaps images are never filtered: index = position in 'images'
        if item.domain not in NOCAPS_DOMAINS:
            raise AnnotationFile(root / file_name, "the NoCaps format").error(
                f"images[{index}].domain is {item.domain!r}, not one of {list(NOCAPS_DOMAINS)}"
            )
    return records


__all__ = ["NOCAPS_DOMAINS", "read_coco_captions", "read_coco_val_captions", "read_nocaps"]
