"""MSR-VTT text-video retrieval, zero-shot, as CoCa does it: the mean of 16 uniformly sampled frames' embeddings.

Each frame goes through the shared image encoder on its own (no temporal fusion); a video's embedding is the mean
of its frames' L2-normalised embeddings, renormalised. Splits: ``1k-A`` (``MSRVTT_JSFUSION_test.csv``, 1,000 videos,
one caption each: the common split) and ``full`` (the 2,990 test videos of ``MSRVTT_data.json``, 20 captions each:
the split the CoCa paper reports). Ranking is the image retrieval task's (ties count against the model); one record
per video with ``v2t_rank``, ``t2v_ranks`` of its captions and the ``frame_indices`` it was encoded from.
"""

from __future__ import annotations

from typing import Any

from coca_bench.registry import MetricSpec, TaskContext, TaskResult, register_task

KS = (1, 5, 10)
DIRECTIONS = ("v2t", "t2v")
METRICS = tuple(
    [MetricSpec(f"{d}_recall@{k}", aggregation="task") for d in ("t2v", "v2t") for k in KS]
    + [MetricSpec(f"{d}_{stat}_rank", higher_is_better=False, aggregation="task") for d in ("t2v", "v2t")
       for stat in ("median", "mean")]
)  # fmt: skip
PARAMS = {"split": "1k-A", "num_frames": 16, "sampling": "uniform", "backend": "decord"}


def _aggregate(samples: Any, params: dict[str, Any]) -> dict[str, float]:
    from coca_bench.metrics.retrieval import retrieval_metrics_from_samples

    return retrieval_metrics_from_samples(samples, ks=KS, names=DIRECTIONS, rank_fields=("v2t_rank", "t2v_ranks"))


def msrvtt_retrieval(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    import numpy as np

    from coca_bench.data import read_msrvtt
    from coca_bench.features import FrameSampling
    from coca_bench.metrics.embeddings import collapse_warnings
    from coca_bench.metrics.retrieval import rank_retrieval, retrieval_sample_records

    records = ctx.load(read_msrvtt(ctx.dataset_dir, params["split"]))
    sampling = FrameSampling(params["num_frames"], params["sampling"], params["backend"])
    videos = ctx.features.embed_videos(records.items, sampling)
    kept = {record.id: record for record in records.items}
    captions = [(index, text) for index, video_id in enumerate(videos.ids) for text in kept[video_id].captions]
    owner = np.array([index for index, _ in captions], dtype=np.int64)
    texts = ctx.features.embed_texts([text for _, text in captions])
    ranks = rank_retrieval(videos.vectors, texts, owner, top_k=5)
    samples = [
        {"id": video_id, "v2t_rank": row["i2t_rank"], "t2v_ranks": row["t2i_ranks"], "frame_indices": frames}
        for video_id, row, frames in zip(videos.ids, retrieval_sample_records(ranks, owner), videos.frame_indices)
    ]
    return TaskResult(
        samples=samples,
        extra_config={
            "frames": sampling.as_dict(),
            "pooling": "mean of normalised frame embeddings, renormalised",
            "num_videos": len(videos.ids),
            "num_captions": len(captions),
        },  # fmt: skip
        warnings=collapse_warnings({"video": videos.vectors, "text": texts}),
    )


register_task(
    "msrvtt_retrieval", groups=("video", "retrieval", "zeroshot"), dataset="msrvtt", metrics=METRICS, params=PARAMS,
    aggregate=_aggregate,
    description="MSR-VTT text<->video retrieval (mean-pooled frame embeddings): recall@1/5/10, ranks",
)(msrvtt_retrieval)  # fmt: skip
