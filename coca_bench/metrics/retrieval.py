"""Cross-modal retrieval ranks and recall@K (pure numpy), one implementation for image-text and video-text.

Conventions, chosen so that a model never gains from a tie:
- An item's rank is 1 + the number of *wrong* gallery items that score at least as high as the correct one. For
  image->text the correct score is that of the image's best-scoring ground-truth caption; for text->image it is the
  caption's own image. With ``torch.topk`` or ``argsort`` a tie is broken by position, so duplicated embeddings (or
  a collapsed model that scores everything equally) can report a perfect recall; here such ties count against the
  model (the index-order tie bug of ArrowLuo/CLIP4Clip issue #80, and ``torch.topk``'s unspecified tie order in
  CLIP_benchmark's ``recall_at_k``).
- Similarities are dot products in float32, computed in blocks of at most ``block_size`` x ``block_size``, so memory
  is bounded by the block size, never by images x texts (1M-caption galleries fit). Exactly duplicated embeddings
  (a caption shared by two images, a repeated frame) tie bit for bit: BLAS may round one dot product differently at
  different positions of a product, so duplicates are merged into one row first, and the score of a correct pair
  is read from the very block product that its competitors' scores come from.
- Recall@K is "at least one ground-truth caption in the top K" for image->text and "the paired image in the top K"
  for text->image: CLIP_benchmark's ``recall_at_k(...) > 0`` averaged over queries (its
  ``text_retrieval_recall@K`` is our ``i2t_recall@K``, its ``image_retrieval_recall@K`` our ``t2i_recall@K``).
  Ranks are 1-based, as MSR-VTT's median/mean rank (MdR/MnR) are reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from coca_bench.metrics.resampling import Resampler

_CHUNK_VALUES = 2**20  # values per step of the row-wise passes (finiteness, hashing): a few MiB of temporaries


@dataclass(frozen=True)
class RetrievalRanks:
    """Per-query ranks of one retrieval evaluation (1-based; ties count against the model)."""

    i2t_rank: np.ndarray  # [N] rank of each image's best-ranked ground-truth text among all texts
    t2i_rank: np.ndarray  # [M] rank of each text's own image among all images
    top_texts: np.ndarray  # [N, min(top_k, M)] indices of each image's highest-scoring texts, ties by lower index


def _all_finite(x: np.ndarray) -> bool:
    """``np.isfinite(x).all()`` a slice at a time: a 1M-caption gallery would otherwise need a 0.5 GB mask."""
    step = max(1, _CHUNK_VALUES // max(x.shape[1], 1))
    return all(np.isfinite(x[s : s + step]).all() for s in range(0, x.shape[0], step))


def _check_inputs(
    query_emb: np.ndarray, gallery_text_emb: np.ndarray, text_owner: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    query = np.asarray(query_emb)
    texts = np.asarray(gallery_text_emb)
    owner = np.asarray(text_owner)
    if query.ndim != 2:
        raise ValueError(f"query_emb must be a [items, dim] array; got shape {query.shape}.")
    if texts.ndim != 2:
        raise ValueError(f"gallery_text_emb must be a [texts, dim] array; got shape {texts.shape}.")
    if query.shape[0] == 0:
        raise ValueError("There are no images (or videos) to rank; check the dataset and --limit.")
    if texts.shape[0] == 0:
        raise ValueError("There are no texts to rank; check the dataset and --limit.")
    if query.shape[1] != texts.shape[1]:
        raise ValueError(f"Image and text embeddings must have one width; got {query.shape[1]} and {texts.shape[1]}.")
    if owner.shape != (texts.shape[0],):
        raise ValueError(f"text_owner must have one entry per text ({texts.shape[0]}); got shape {owner.shape}.")
    if not np.issubdtype(owner.dtype, np.integer):
        raise ValueError(f"text_owner must hold integer image indices; got dtype {owner.dtype}.")
    if owner.min() < 0 or owner.max() >= query.shape[0]:
        raise ValueError(f"text_owner must lie in [0, {query.shape[0]}); got {owner.min()} to {owner.max()}.")
    captions_per_image = np.bincount(owner, minlength=query.shape[0])
    if (captions_per_image == 0).any():
        first = np.flatnonzero(captions_per_image == 0)[:5].tolist()
        raise ValueError(f"Every image must own at least one text; images {first} own none.")
    # fp16 stays fp16 (each block is cast to fp32 as it is computed: the same values as a cast of the whole array,
    # without a gallery-sized fp32 copy); anything else becomes fp32
    query, texts = (
        np.ascontiguousarray(x, dtype=x.dtype if x.dtype == np.float16 else np.float32) for x in (query, texts)
    )
    if not (_all_finite(query) and _all_finite(texts)):
        raise ValueError("Embeddings contain NaN or infinity; the encoder produced invalid values (try fp32).")
    return query, texts, owner.astype(np.int64)


def _row_hashes(x: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's bits (after turning -0.0 into 0.0, so rows equal in value hash alike)."""
    n, d = x.shape
    multipliers = np.random.default_rng(0).integers(1, 2**63, size=d, dtype=np.uint64) | np.uint64(1)
    keys = np.empty(n, dtype=np.uint64)
    chunk = max(1, _CHUNK_VALUES // max(d, 1))
    for s in range(0, n, chunk):
        bits = (x[s : s + chunk] + np.float32(0)).view(np.uint32).astype(np.uint64)
        keys[s : s + chunk] = (bits * multipliers).sum(axis=1)  # wraps modulo 2**64
    return keys


def _unique_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows equal in value share one representative: (first index of each, row -> representative, multiplicity).

    Representatives keep first-occurrence order. Rows are grouped by hash and every group is then checked for
    equality, falling back to an exact (slower) row sort on a hash collision.
    """
    _, first, inverse = np.unique(_row_hashes(x), return_index=True, return_inverse=True)
    chunk = max(1, _CHUNK_VALUES // max(x.shape[1], 1))
    if not all(np.array_equal(x[first[inverse[s : s + chunk]]], x[s : s + chunk]) for s in range(0, len(x), chunk)):
        _, first, inverse = np.unique(x + np.float32(0), axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    relabel = np.empty_like(order)
    relabel[order] = np.arange(order.size)
    inverse = relabel[inverse.reshape(-1)]
    return first[order], inverse, np.bincount(inverse, minlength=order.size)


def _block_scores(query: np.ndarray, texts: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """The one place similarities are computed: the same (rows, cols) block always gives the same bits."""
    return query[rows].astype(np.float32, copy=False) @ texts[cols].astype(np.float32, copy=False).T


def _block_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` highest scores and their column positions (unordered), ties broken by lower position."""
    cols = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]
    kth = np.take_along_axis(scores, cols, axis=1).min(axis=1, keepdims=True)
    # argpartition picks arbitrarily among entries tied with the k-th score; redo the rows where that mattered.
    tied = np.flatnonzero(np.count_nonzero(scores >= kth, axis=1) > k)
    if tied.size:
        sub, sub_kth = scores[tied], kth[tied]
        above, at = sub > sub_kth, sub == sub_kth
        # Of the entries equal to the k-th score, keep the lowest-positioned ones needed to make exactly k per row.
        chosen = above | (at & (np.cumsum(at, axis=1) <= k - above.sum(axis=1, keepdims=True)))
        cols[tied] = np.nonzero(chosen)[1].reshape(tied.size, k)
    return np.take_along_axis(scores, cols, axis=1), cols


def _merge_top_k(
    vals_a: np.ndarray, idx_a: np.ndarray, vals_b: np.ndarray, idx_b: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    vals = np.concatenate([vals_a, vals_b], axis=1)
    idx = np.concatenate([idx_a, idx_b], axis=1)
    order = np.lexsort((idx, -vals), axis=-1)[:, :k]  # primary: score descending; secondary: index ascending
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(idx, order, axis=1)


def _members_by_block(inverse: np.ndarray, num_unique: int, block_size: int) -> list[np.ndarray]:
    """For each block of representatives, the original rows they stand for, in ascending original order."""
    block_of_row = inverse // block_size
    order = np.argsort(block_of_row, kind="stable")
    bounds = np.searchsorted(block_of_row[order], np.arange(1, -(-num_unique // block_size)))
    return np.split(order, bounds)


def _chunks(index: np.ndarray, size: int) -> list[np.ndarray]:
    return [index[s : s + size] for s in range(0, index.size, size)]


def rank_retrieval(
    query_emb: np.ndarray,
    gallery_text_emb: np.ndarray,
    text_owner: np.ndarray,
    *,
    top_k: int = 5,
    block_size: int = 1024,
) -> RetrievalRanks:
    """Rank every text for every image and every image for every text by dot product (pass L2-normalised embeddings).

    ``text_owner[j]`` is the index of the image (or video) that text ``j`` describes; each image must own at least
    one text. Memory is O(block_size^2 + (N + M) + N * top_k) beyond the inputs (plus a copy of the distinct rows
    when some are duplicated).

    How exact ties stay exact: BLAS may round the same dot product differently at different positions of a matrix
    product, so exactly duplicated embeddings (a caption shared by two images, a repeated frame) are first merged
    into one representative row, and each score is computed once per (representative image, representative text)
    in a fixed block grid. Pass 1 computes only the blocks that hold a correct pair (few when captions are listed
    image by image); pass 2 recomputes every block with the same call and counts, per image and per text, the items
    scoring at least as high as the correct one, weighted by how many originals each representative stands for.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1; got {block_size}.")
    if top_k < 0:
        raise ValueError(f"top_k must be non-negative; got {top_k}.")
    query, texts, owner = _check_inputs(query_emb, gallery_text_emb, text_owner)
    n, m = query.shape[0], texts.shape[0]
    k = min(top_k, m)
    q_first, q_of, q_count = _unique_rows(query)
    t_first, t_of, t_count = _unique_rows(texts)
    if q_first.size < n:  # with no duplicates the representatives are the rows themselves, in order: no copy
        query = query[q_first]
    if t_first.size < m:
        texts = texts[t_first]
    num_q, num_t = q_first.size, t_first.size
    col_blocks = -(-num_t // block_size)

    def block(row_block: int, col_block: int) -> tuple[slice, slice, np.ndarray]:
        r0, c0 = row_block * block_size, col_block * block_size
        rows, cols = slice(r0, min(r0 + block_size, num_q)), slice(c0, min(c0 + block_size, num_t))
        return rows, cols, _block_scores(query, texts, rows, cols)

    # Pass 1: the score of every correct (image, text) pair, from the block product that pass 2 recomputes.
    pair_q, pair_t = q_of[owner], t_of
    pair_block = (pair_q // block_size) * col_blocks + pair_t // block_size
    positive = np.empty(m, dtype=np.float32)
    for key in np.unique(pair_block):
        rows, cols, scores = block(*divmod(int(key), col_blocks))
        here = np.flatnonzero(pair_block == key)
        positive[here] = scores[pair_q[here] - rows.start, pair_t[here] - cols.start]
    best_positive = np.full(n, -np.inf, dtype=np.float32)
    np.maximum.at(best_positive, owner, positive)
    own_at_best = np.bincount(owner, weights=positive == best_positive[owner], minlength=n).astype(np.int64)

    # Pass 2: for every image, the texts scoring at least its best caption's score (its own tied captions included,
    # removed below); for every text, the images scoring at least its own image's score (its own image included).
    i2t_at_least = np.zeros(n, dtype=np.int64)
    t2i_at_least = np.zeros(m, dtype=np.int64)
    top_per_rep = np.empty((num_q, k), dtype=np.int64)
    images_in = _members_by_block(q_of, num_q, block_size)
    texts_in = _members_by_block(t_of, num_t, block_size)
    q_weight, t_weight = q_count.astype(np.float64), t_count.astype(np.float64)  # exact integer sums
    for row_block, images_here in enumerate(images_in):
        top_vals = np.empty((min(block_size, num_q - row_block * block_size), 0), dtype=np.float32)
        top_idx = np.empty(top_vals.shape, dtype=np.int64)
        for col_block, texts_here in enumerate(texts_in):
            rows, cols, scores = block(row_block, col_block)
            for images in _chunks(images_here, block_size):
                per_image = scores[q_of[images] - rows.start] if num_q < n else scores  # one row per original
                at_least = per_image >= best_positive[images, None]
                counted = at_least @ t_weight[cols] if num_t < m else np.count_nonzero(at_least, axis=1)
                i2t_at_least[images] += np.asarray(counted, dtype=np.int64)
            for texts_chunk in _chunks(texts_here, block_size):
                per_text = scores[:, t_of[texts_chunk] - cols.start] if num_t < m else scores  # one column per original
                at_least = per_text >= positive[None, texts_chunk]
                counted = q_weight[rows] @ at_least if num_q < n else np.count_nonzero(at_least, axis=0)
                t2i_at_least[texts_chunk] += np.asarray(counted, dtype=np.int64)
                if k:
                    block_vals, block_pos = _block_top_k(per_text, min(k, texts_chunk.size))
                    top_vals, top_idx = _merge_top_k(top_vals, top_idx, block_vals, texts_chunk[block_pos], k)
        top_per_rep[row_block * block_size : row_block * block_size + top_idx.shape[0]] = top_idx
    return RetrievalRanks(i2t_rank=1 + i2t_at_least - own_at_best, t2i_rank=t2i_at_least, top_texts=top_per_rep[q_of])


def _check_ranks(ranks: Any, name: str) -> np.ndarray:
    ranks = np.asarray(ranks)
    if ranks.ndim != 1 or ranks.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of ranks; got shape {ranks.shape}.")
    if not np.issubdtype(ranks.dtype, np.integer) or ranks.min() < 1:
        raise ValueError(f"{name} must hold 1-based integer ranks; got dtype {ranks.dtype}, minimum {ranks.min()}.")
    return ranks


def retrieval_metrics(
    i2t_rank: np.ndarray,
    t2i_rank: np.ndarray,
    *,
    ks: Iterable[int] = (1, 5, 10),
    names: tuple[str, str] = ("i2t", "t2i"),
) -> dict[str, float]:
    """``{i2t}_recall@K`` (fractions in [0, 1]), ``{i2t}_median_rank`` and ``{i2t}_mean_rank``, then the same for t2i.

    ``names`` renames the two directions (``("v2t", "t2v")`` for video). Recall@K for K at or above the gallery
    size is trivially 1.0; the caller, which knows the gallery, decides whether to report it.
    """
    ks = tuple(ks)
    if any(k < 1 for k in ks):
        raise ValueError(f"Every K must be at least 1; got {ks}.")
    metrics: dict[str, float] = {}
    for name, ranks in zip(names, (i2t_rank, t2i_rank)):
        ranks = _check_ranks(ranks, f"{name} ranks")
        for k in ks:
            metrics[f"{name}_recall@{k}"] = float(np.mean(ranks <= k))
        metrics[f"{name}_median_rank"] = float(np.median(ranks))
        metrics[f"{name}_mean_rank"] = float(np.mean(ranks))
    return metrics


def retrieval_sample_records(ranks: RetrievalRanks, text_owner: np.ndarray) -> list[dict[str, Any]]:
    """One record per image: ``i2t_rank``, ``t2i_ranks`` (its texts' ranks in annotation order) and ``top_texts``.

    Per-image records make a bootstrap over images resample each image together with its captions.
    """
    owner = np.asarray(text_owner)
    if owner.shape != ranks.t2i_rank.shape:
        raise ValueError(f"text_owner must have one entry per text ({ranks.t2i_rank.size}); got shape {owner.shape}.")
    if owner.size and owner.max() >= ranks.i2t_rank.size:
        raise ValueError(f"text_owner must lie in [0, {ranks.i2t_rank.size}); got up to {owner.max()}.")
    order = np.argsort(owner, kind="stable")  # texts grouped by image, annotation order kept within an image
    bounds = np.cumsum(np.bincount(owner, minlength=ranks.i2t_rank.size))[:-1]
    per_image = np.split(ranks.t2i_rank[order], bounds)
    return [
        {"i2t_rank": int(rank), "t2i_ranks": texts.tolist(), "top_texts": top.tolist()}
        for rank, texts, top in zip(ranks.i2t_rank, per_image, ranks.top_texts)
    ]


def retrieval_metrics_from_samples(
    samples: Sequence[Mapping[str, Any]],
    ks: Iterable[int] = (1, 5, 10),
    names: tuple[str, str] = ("i2t", "t2i"),
    rank_fields: tuple[str, str] = ("i2t_rank", "t2i_ranks"),
) -> dict[str, float]:
    """Recompute :func:`retrieval_metrics` from per-image records (for the bootstrap, which resamples images).

    Each record holds the image's rank under ``rank_fields[0]`` and the list of its texts' ranks under
    ``rank_fields[1]``; a resampled image brings all its texts with it.
    """
    if not samples:
        raise ValueError("There are no samples to score.")
    i2t_field, t2i_field = rank_fields
    i2t = np.array([s[i2t_field] for s in samples], dtype=np.int64)
    t2i = np.array([r for s in samples for r in s[t2i_field]], dtype=np.int64)
    return retrieval_metrics(i2t, t2i, ks=ks, names=names)


def _weighted_medians(sorted_values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``np.median`` of each row's multiset, in which ``sorted_values[j]`` (ascending) occurs ``weights[r, j]``
    times: the middle element, or the mean of the two middle ones. Rows go in blocks to bound the cumulative sums."""
    out = np.empty(weights.shape[0])
    block = max(1, _CHUNK_VALUES // max(1, weights.shape[1]))
    for start in range(0, weights.shape[0], block):
        cumulative = np.cumsum(weights[start : start + block], axis=1)
        total = cumulative[:, -1]
        # the element at 0-based position p is the first j whose cumulative count exceeds p
        last = sorted_values.size - 1
        low = np.minimum((cumulative <= ((total - 1) // 2)[:, None]).sum(axis=1), last)
        high = np.minimum((cumulative <= (total // 2)[:, None]).sum(axis=1), last)
        out[start : start + block] = np.where(total > 0, (sorted_values[low] + sorted_values[high]) / 2.0, np.nan)
    return out


def retrieval_resampler(
    samples: Sequence[Mapping[str, Any]],
    ks: Iterable[int] = (1, 5, 10),
    names: tuple[str, str] = ("i2t", "t2i"),
    rank_fields: tuple[str, str] = ("i2t_rank", "t2i_ranks"),
) -> Resampler:
    """:func:`retrieval_metrics_from_samples` on every bootstrap resample at once (see
    :mod:`~coca_bench.metrics.resampling`): a drawn image brings its texts, so each text weighs its image's count."""
    if not samples:
        raise ValueError("There are no samples to score.")
    ks = tuple(ks)
    i2t_field, t2i_field = rank_fields
    image_ranks = np.array([s[i2t_field] for s in samples], dtype=np.int64)
    text_lists = [s[t2i_field] for s in samples]
    text_ranks = np.array([r for ranks in text_lists for r in ranks], dtype=np.int64)
    owner = np.repeat(np.arange(len(samples)), [len(ranks) for ranks in text_lists])
    texts_per_image = np.bincount(owner, minlength=len(samples)).astype(np.float64)
    text_rank_sums = np.bincount(owner, weights=text_ranks, minlength=len(samples))
    text_hits = {k: np.bincount(owner, weights=text_ranks <= k, minlength=len(samples)) for k in ks}
    image_order, text_order = np.argsort(image_ranks, kind="stable"), np.argsort(text_ranks, kind="stable")

    @np.errstate(invalid="ignore", divide="ignore")  # a resample without texts: NaN (the aggregate would raise)
    def evaluate(counts: np.ndarray) -> dict[str, np.ndarray]:
        images, texts = counts.sum(axis=1), counts @ texts_per_image
        i2t, t2i = names
        out: dict[str, np.ndarray] = {}
        for k in ks:
            out[f"{i2t}_recall@{k}"] = counts @ (image_ranks <= k).astype(np.float64) / images
        out[f"{i2t}_median_rank"] = _weighted_medians(image_ranks[image_order], counts[:, image_order])
        out[f"{i2t}_mean_rank"] = counts @ image_ranks.astype(np.float64) / images
        for k in ks:
            out[f"{t2i}_recall@{k}"] = counts @ text_hits[k] / texts
        out[f"{t2i}_median_rank"] = _weighted_medians(text_ranks[text_order], counts[:, owner[text_order]])
        out[f"{t2i}_mean_rank"] = counts @ text_rank_sums / texts
        return out

    return evaluate
