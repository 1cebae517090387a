"""Image captioning: COCO Karpathy test and NoCaps val, scored with pycocoevalcap under its own names and scale.

Captions come from the model's KV-cached ``generate`` through the cached caption path (an interrupted run resumes
where it stopped). The default generation is open_clip's, so numbers compare with CLIP_benchmark's captioning: beam
search with 6 beams in 3 groups, raw-logit beam scores, ``seq_len=30`` and ``min_seq_len=5`` as open_clip counts them
(``max_new_tokens=29``, ``min_new_tokens=4``). Per-sample records keep the PTB-tokenized caption and references, so
comparison recomputes corpus CIDEr (which is not a mean of per-image values once document frequencies change),
BLEU and ROUGE-L on every bootstrap resample; METEOR needs Java and is not resampled.
"""

from __future__ import annotations

from typing import Any

from coca_bench.registry import MetricSpec, TaskContext, TaskResult, register_task

COCO_METRICS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
NOCAPS_DOMAIN_METRICS = ("CIDEr_in", "CIDEr_near", "CIDEr_out")
GENERATION = {
    "strategy": "beam", "num_beams": 6, "num_beam_groups": 3, "beam_score": "logits", "max_new_tokens": 29,
    "min_new_tokens": 4, "length_penalty": 1.0, "repetition_penalty": 1.0, "top_k": 50, "top_p": 0.9,
    "temperature": 1.0, "decode_dtype": "fp32",  # "bf16": faster decoding, not open_clip's exact tokens (README)
}  # fmt: skip
PARAMS = {"split": "test", "references": "karpathy", "annotation_file": None, "image_root": None,
          "caption_batch_size": 16, "spice": None, **GENERATION}  # fmt: skip


def _aggregate(samples: Any, params: dict[str, Any]) -> dict[str, float]:
    from coca_bench.metrics.captioning import caption_metrics_from_samples

    return caption_metrics_from_samples(samples)


def captioning(ctx: TaskContext, params: dict[str, Any], records: Any) -> TaskResult:
    from coca_bench.metrics.captioning import caption_sample_records

    generation = {key: params[key] for key in GENERATION}
    generated = ctx.features.captions(records.items, generation, batch_size=params["caption_batch_size"])
    by_id = {item.id: item for item in records.items}
    has_domains = any(item.domain is not None for item in records.items)
    metrics, samples, not_computed = caption_sample_records(
        dict(zip(generated.ids, generated.texts)),
        {image_id: list(by_id[image_id].captions) for image_id in generated.ids},
        domains={i: by_id[i].domain for i in generated.ids} if has_domains else None,
        spice=params["spice"],
    )
    return TaskResult(
        metrics=metrics,
        samples=samples,
        not_computed=not_computed,
        extra_config={"generation": generation, "decoding_batch_size": params["caption_batch_size"]},
    )


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
    elif params["references"] != "karpathy":
        raise ValueError(f"Task parameter references={params['references']!r} is not 'karpathy' or 'coco_json'.")
    return captioning(ctx, params, ctx.load(records))


def nocaps_captioning(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    from coca_bench.data import read_nocaps

    return captioning(ctx, params, ctx.load(read_nocaps(ctx.dataset_dir, params["split"])))


def _metrics(extra: tuple[str, ...] = ()) -> tuple[MetricSpec, ...]:
    return tuple(  # ROUGE-L is pycocoevalcap's mean of per-image scores; the others are corpus scores
        MetricSpec(name, aggregation="mean" if name == "ROUGE_L" else "task") for name in (*COCO_METRICS, *extra)
    )


register_task(
    "coco_captioning", groups=("image", "captioning"), dataset="coco", metrics=_metrics(), params=PARAMS,
    aggregate=_aggregate,
    description="COCO Karpathy test captioning: BLEU, METEOR, ROUGE-L, CIDEr (pycocoevalcap), SPICE when available",
)(coco_captioning)  # fmt: skip

register_task(
    "nocaps_captioning", groups=("image", "captioning"), dataset="nocaps",
    metrics=_metrics(NOCAPS_DOMAIN_METRICS), params={**PARAMS, "split": "val"}, aggregate=_aggregate,
    description="NoCaps val captioning: the COCO metrics plus CIDEr in-, near- and out-of-domain",
)(nocaps_captioning)  # fmt: skip
