"""Datasets: readers of the official formats, media loading, and the bundled mini datasets.

Nothing here imports torch or the model (``--tasks list`` must stay fast); av, decord
and open_clip are imported lazily inside the functions that need them. Readers
return frozen record sets (:mod:`coca_bench.data.records`) holding paths, not pixels.
"""

from coca_bench.data.annotations import (
    AnnotationFormatError,
    DatasetLayoutError,
    DatasetNotFoundError,
)
from coca_bench.data.coco_captions import read_coco_captions, read_coco_val_captions, read_nocaps
from coca_bench.data.image_folder import image_folder_classes, read_image_folder, read_train_eval_splits
from coca_bench.data.imagenet import imagenet_classnames, imagenet_wnids, read_imagenet
from coca_bench.data.images import load_image
from coca_bench.data.karpathy import find_karpathy, read_karpathy
from coca_bench.data.kinetics import read_kinetics
from coca_bench.data.media import UnreadableMediaError
from coca_bench.data.minidata import GENERATOR_VERSION, default_data_root, generate_minidata
from coca_bench.data.moments import read_moments
from coca_bench.data.msrvtt import read_msrvtt
from coca_bench.data.records import (
    CaptionSet,
    ClassificationSample,
    ClassificationSet,
    ImageCaptions,
    RecordSet,
    VideoCaptions,
    VideoClip,
    VqaQuestion,
    VqaSet,
)
from coca_bench.data.video import count_frames, read_frames, read_sampled_frames, sample_frame_indices
from coca_bench.data.vqa import read_vqa

__all__ = [
    "AnnotationFormatError",
    "CaptionSet",
    "ClassificationSample",
    "ClassificationSet",
    "DatasetLayoutError",
    "DatasetNotFoundError",
    "GENERATOR_VERSION",
    "ImageCaptions",
    "RecordSet",
    "UnreadableMediaError",
    "VideoCaptions",
    "VideoClip",
    "VqaQuestion",
    "VqaSet",
    "count_frames",
    "default_data_root",
    "find_karpathy",
    "generate_minidata",
    "image_folder_classes",
    "imagenet_classnames",
    "imagenet_wnids",
    "load_image",
    "read_coco_captions",
    "read_coco_val_captions",
    "read_frames",
    "read_image_folder",
    "read_imagenet",
    "read_karpathy",
    "read_kinetics",
    "read_moments",
    "read_msrvtt",
    "read_nocaps",
    "read_sampled_frames",
    "read_train_eval_splits",
    "read_vqa",
    "sample_frame_indices",
]
