"""ImageNet zero-shot classification, CLIP protocol (prompt-ensemble class weights, top-k accuracy), and the
robustness test sets of the CoCa paper's Table 4 scored the way CLIP_benchmark scores them (open_clip's table).

``label_space`` says which classes the logits span. ``full``: every class of the label space (1,000 for
ImageNet-1k, or every class of ``LOC_synset_mapping.txt``), however many class folders are present, so a partly
extracted folder never reports inflated accuracy. ``present``: the classes present (``imagenet_subset_zeroshot``).
``imagenet_a`` / ``imagenet_r``: the official 200-class lists (CLIP_benchmark ``datasets/builder.py`` masks), within
the label space, whichever folders are present; an image of a class outside the list is an error.

``split`` is the folder holding the class folders, as the archive unpacks (the dataset folder itself when its
contents were placed there); it may name other parameters in braces (ImageNet-V2's ``{release}``). Class folders may
be wnids or label indices (ImageNet-V2's ``0``..``999``, the label being the index).
"""

from __future__ import annotations

from typing import Any

from coca_bench.params import Param
from coca_bench.registry import SampleView, TaskContext, TaskResult, group_average, register_task, variant
from coca_bench.tasklib import CLASSIFICATION_METRICS, TEMPLATES_PARAM, classification_aggregate
from coca_bench.tasklib.classification import templates_key_material

LABEL_SPACES = ("full", "present", "imagenet_a", "imagenet_r")
GROUPS = ("image", "zeroshot", "classification")
ROBUSTNESS_GROUPS = (*GROUPS, "imagenet_robustness")  # Table 4: ImageNet and its five robustness test sets
IMAGENET_V2_RELEASES = ("matched-frequency", "threshold0.7", "top-images")


@register_task(
    "imagenet_zeroshot", groups=ROBUSTNESS_GROUPS, dataset="imagenet",
    metrics=CLASSIFICATION_METRICS, aggregate=classification_aggregate, key_material=templates_key_material,
    view=SampleView("classification"),
    params={"split": Param("val", help="the folder holding the class folders; may name other parameters in braces"),
            "templates": TEMPLATES_PARAM, "logit_scale": 100.0,
            "label_space": Param("full", choices=LABEL_SPACES,
                                 help="every class, those present, or an official 200-class subset")},
)  # fmt: skip
def imagenet_zeroshot(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    """ImageNet zero-shot classification over the full label space"""
    from coca_bench.data import DatasetLayoutError, read_imagenet
    from coca_bench.data.imagenet import OFFICIAL_SUBSET_FILES, official_subset_wnids
    from coca_bench.data.records import RecordSet
    from coca_bench.tasklib.classification import zero_shot_image_classification

    split = ctx.load(read_imagenet(ctx.dataset_dir, params["split"].format_map(params)))
    # The label space never depends on --limit: the whole split's classes, or every class of the dataset.
    space = params["label_space"]
    if space == "full":
        scored = list(range(len(split.class_names)))
    elif space == "present":
        scored = list(split.present_labels)
    else:
        subset = official_subset_wnids(space)
        list_read = RecordSet(items=(), split=f"{space} classes", annotation_files=(OFFICIAL_SUBSET_FILES[space],))
        ctx.load(list_read, evaluated=False)  # the class list decides what is scored: the key covers it
        scored = [label for label, wnid in enumerate(split.class_ids) if wnid in subset]
        outside = sorted({split.class_ids[s.label] for s in split.items} - subset)
        if not scored or outside:
            found = f"class folder(s) {outside[:5]}" if outside else "no class of its label space"
            raise DatasetLayoutError(
                f"{ctx.dataset_dir} holds {found} outside the official {space} classes "
                f"({OFFICIAL_SUBSET_FILES[space].name}); expected only that dataset's class folders."
            )
    return zero_shot_image_classification(ctx, split, scored, params)


variant("imagenet_zeroshot", "imagenet_subset_zeroshot", dataset="imagenet_subset", params={"label_space": "present"},
        groups=GROUPS, description="ImageNet-A/-R style subset, logits restricted to its classes")  # fmt: skip
variant("imagenet_zeroshot", "imagenet_v2_zeroshot", dataset="imagenet_v2",
        params={"split": "imagenetv2-{release}-format-val",
                "release": Param("matched-frequency", choices=IMAGENET_V2_RELEASES, help="the ImageNetV2 release")},
        description="ImageNet-V2 zero-shot (folders 0..999 are the labels), 1,000 classes")  # fmt: skip
variant("imagenet_zeroshot", "imagenet_a_zeroshot", dataset="imagenet_a",
        params={"split": "imagenet-a", "label_space": "imagenet_a"},
        description="ImageNet-A zero-shot over its official 200 classes")  # fmt: skip
variant("imagenet_zeroshot", "imagenet_r_zeroshot", dataset="imagenet_r",
        params={"split": "imagenet-r", "label_space": "imagenet_r"},
        description="ImageNet-R zero-shot over its official 200 classes")  # fmt: skip
variant("imagenet_zeroshot", "imagenet_sketch_zeroshot", dataset="imagenet_sketch", params={"split": "sketch"},
        description="ImageNet-Sketch zero-shot, 1,000 classes")  # fmt: skip
group_average("imagenet_robustness", "acc1")  # the paper's "Avg" over ImageNet and its five robustness test sets
