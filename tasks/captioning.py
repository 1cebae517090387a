"""Image captioning: COCO Karpathy test and NoCaps val, scored with pycocoevalcap under its own names and scale.

Captions come from the model's KV-cached ``generate`` through the cached caption path (an interrupted run resumes
where it stopped). The default generation is open_clip's, so numbers compare with CLIP_benchmark's captioning (see
:data:`coca_bench.tasklib.GENERATION_PARAMS`). Per-sample records keep the PTB-tokenized caption and references, so
comparison recomputes corpus CIDEr (which is not a mean of per-image values once document frequencies change),
BLEU and ROUGE-L on every bootstrap resample; METEOR needs Java and is not resampled.
"""

from __future__ import annotations

from typing import Any

from coca_bench.params import Param
from coca_bench.registry import SampleView, TaskContext, TaskResult, register_task
from coca_bench.tasklib import (
    GENERATION_PARAMS,
    NOCAPS_DOMAIN_METRICS,
    caption_aggregate,
    caption_metric_specs,
    generation_settings,
    score_captions,
)

PARAMS = {"caption_batch_size": 16, "spice": Param(None, bool, help="null: when its jars are there"),
          **GENERATION_PARAMS}  # fmt: skip


def _score(ctx: TaskContext, params: dict[str, Any], records: Any) -> TaskResult:
    generated = ctx.features.captions(
        records.items, generation_settings(params), batch_size=params["caption_batch_size"]
    )
    by_id = {item.id: item for item in records.items}
    has_domains = any(item.domain is not None for item in records.items)
    return score_captions(
        dict(zip(generated.ids, generated.texts)), {i: by_id[i].captions for i in generated.ids}, params,
        domains={i: by_id[i].domain for i in generated.ids} if has_domains else None,
        extra_config={"decoding_batch_size": params["caption_batch_size"]},
    )  # fmt: skip


@register_task(
    "coco_captioning", groups=("image", "captioning"), dataset="coco", metrics=caption_metric_specs(),
    aggregate=caption_aggregate, view=SampleView("caption"),
    params={"split": "test", "references": Param("karpathy", choices=("karpathy", "coco_json")),
            "annotation_file": Param(None, str), "image_root": Param(None, str), **PARAMS},
    description="COCO Karpathy test captioning: BLEU, METEOR, ROUGE-L, CIDEr (pycocoevalcap), SPICE when available",
)  # fmt: skip
def coco_captioning(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    from coca_bench.data import find_karpathy, read_coco_captions

    records = find_karpathy(ctx.dataset_dir, "coco", params["split"], params["annotation_file"], params["image_root"])
    if params["references"] == "coco_json":  # the references of captions_val2014.json for the Karpathy test images
        official = read_coco_captions(
            ctx.dataset_dir / "annotations" / "captions_val2014.json", ctx.dataset_dir / "val2014",
            [int(item.id) for item in records.items],
        )  # fmt: skip
        captions = {item.id: item.captions for item in official.items}
        records = type(records)(
            items=tuple(type(item)(item.id, item.path, captions[item.id], item.domain) for item in records.items),
            split=records.split,
            annotation_files=records.annotation_files + official.annotation_files,
        )
    return _score(ctx, params, ctx.load(records))


@register_task(
    "nocaps_captioning", groups=("image", "captioning"), dataset="nocaps",
    metrics=caption_metric_specs(tuple(NOCAPS_DOMAIN_METRICS)), aggregate=caption_aggregate,
    view=SampleView("caption"),
    params={"split": "val", **PARAMS},
    description="NoCaps val captioning: the COCO metrics plus CIDEr in-, near- and out-of-domain",
)  # fmt: skip
def nocaps_captioning(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    from coca_bench.data import read_nocaps

    return _score(ctx, params, ctx.load(read_nocaps(ctx.dataset_dir, params["split"])))
