"""Karpathy split files (``dataset_coco.json``, ``dataset_flickr30k.json``): the retrieval test sets.

Each image lists its ``split`` and its ``sentences``; the COCO file also gives the
image folder (``filepath``) and the COCO id (``cocoid``), which becomes the record id
so captions can be matched with COCO-format annotations. Flickr files have neither:
their images live in one folder (``flickr30k-images/`` by default) and the record id
is the file name stem.
"""

from __future__ import annotations

from pathlib import Path

from coca_bench.data.annotations import AnnotationFile, AnnotationFormatError, require_dataset_dir
from coca_bench.data.records import CaptionSet, ImageCaptions

KARPATHY_SPLITS = ("train", "restval", "val", "test")
# Image folder of datasets whose Karpathy file has no ``filepath`` field.
DEFAULT_IMAGE_DIRS = {"flickr30k": "flickr30k-images", "flickr8k": "Flicker8k_Dataset"}


def read_karpathy(
    root: Path, name: str, split: str = "test", image_dir: str | None = None, annotation_file: Path | None = None
) -> CaptionSet[ImageCaptions]:
    """Images of ``split`` in ``<root>/dataset_<name>.json`` (or ``annotation_file``), each with its raw captions.

    Image paths are resolved against ``root``: ``image_dir`` overrides the folder; by default it is each image's
    ``filepath`` when present, else :data:`DEFAULT_IMAGE_DIRS` [name].
    """
    root = require_dataset_dir(Path(root), f"the Karpathy split file dataset_{name}.json and the images it names")
    source = AnnotationFile(Path(annotation_file or root / f"dataset_{name}.json"), "the Karpathy split format")
    source.require_exists(f"Karpathy's dataset_{name}.json in {root}")
    payload = source.load_json()
    images = source.objects(payload, "images")
    fallback_dir = image_dir if image_dir is not None else DEFAULT_IMAGE_DIRS.get(name)
    items = []
    first_of: dict[str, int] = {}  # record id -> index in 'images', for duplicates
    for index, image in enumerate(images):
        where = f"images[{index}]"
        image_split = source.field(image, "split", where, str)
        filename = source.field(image, "filename", where, str)
        sentences = source.objects(image, "sentences", where)
        if image_split != split:
            continue
        captions = tuple(
            source.text(sentence, "raw", f"{where}.sentences[{k}]") for k, sentence in enumerate(sentences)
        )
        if not captions:
            raise source.error(f"{where} ({filename}) has no sentences")
        folder = image_dir if image_dir is not None else source.optional_field(image, "filepath", where, str)
        if folder is None:
            if fallback_dir is None:
                raise source.error(f"{where} has no key 'filepath' and dataset {name!r} has no default image folder")
            folder = fallback_dir
        elif image_dir is None:  # the annotation's own folder must stay inside the dataset too
            source.media_path(root, folder, f"{where}.filepath")
        path = source.media_path(root / folder, filename, f"{where}.filename")
        cocoid = source.optional_field(image, "cocoid", where, int)
        record_id = str(cocoid) if cocoid is not None else Path(filename).stem
        if record_id in first_of:
            raise source.error(f"{where} repeats the image id {record_id!r} of images[{first_of[record_id]}]")
        first_of[record_id] = index
        items.append(ImageCaptions(id=record_id, path=path, captions=captions))
    if not items:
        splits = sorted({str(image.get("split")) for image in images})
        raise AnnotationFormatError(
            f"{source.path} has no images in split {split!r}; its splits are {splits} (pick one with --param split=)."
        )
    return CaptionSet(items=tuple(items), split=split, annotation_files=(source.path,))


KARPATHY_FILE_PLACES = ("dataset_{name}.json", "annotations/dataset_{name}.json", "karpathy/dataset_{name}.json")
KARPATHY_IMAGE_ROOTS = (".", "images", "Images")


def find_karpathy(
    dataset_dir: Path, name: str, split: str = "test", annotation_file: str | None = None, image_root: str | None = None
) -> CaptionSet[ImageCaptions]:
    """:func:`read_karpathy` wherever real downloads put the file and the images (``annotations/``, ``images/``...).

    ``annotation_file`` and ``image_root`` (relative to ``dataset_dir`` or absolute) override the search; when
    nothing is found the error lists every place that was tried.
    """
    from coca_bench.data.layout import locate_file, relocate_media

    places = [p.format(name=name) for p in KARPATHY_FILE_PLACES]
    annotation = locate_file(dataset_dir, places, f"Karpathy's dataset_{name}.json", annotation_file)
    records = read_karpathy(dataset_dir, name, split, annotation_file=annotation)
    return relocate_media(records, dataset_dir, KARPATHY_IMAGE_ROOTS, f"{name} images", image_root)


__all__ = ["DEFAULT_IMAGE_DIRS", "KARPATHY_SPLITS", "find_karpathy", "read_karpathy"]
