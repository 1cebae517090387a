import numpy as np
import pytest

from coca_bench.metrics.retrieval import (
    RetrievalRanks,
    rank_retrieval,
    retrieval_metrics,
    retrieval_metrics_from_samples,
    retrieval_sample_records,
)

# Hand-computed case. Images are one-hot, so image i's score for text j is exactly SCORES[i, j] and the texts'
# embeddings are the columns of SCORES. Image 0 owns 5 texts, image 1 one, image 2 two, interleaved.
OWNER = np.array([0, 1, 0, 0, 2, 0, 0, 2])
SCORES = np.array(
    [
        [2, 9, 5, 1, 5, 0, 3, 4],  # own texts 0,2,3,5,6: best 5 (text 2); wrong 9 and 5 (tie) -> rank 3
        [1, 4, 7, 7, 2, 0, 4, 3],  # own text 1: 4; wrong 7, 7 and 4 (tie with text 6) -> rank 4
        [6, 6, 0, 1, 3, 2, 2, 8],  # own texts 4,7: best 8; nothing else reaches 8 -> rank 1
    ],
    dtype=float,
)
IMAGES = np.eye(3)
TEXTS = SCORES.T.copy()
# Text j's rank: 1 + images other than its own scoring >= its own image's score (column j of SCORES).
# text 0: own 2, image 2 has 6 -> 2; text 1: own 4, 9 and 6 -> 3; text 2: own 5, 7 -> 2; text 3: own 1, 7 and 1 (tie)
# -> 3; text 4: own 3, 5 -> 2; text 5: own 0, 0 (tie) and 2 -> 3; text 6: own 3, 4 -> 2; text 7: own 8 -> 1.
I2T = [3, 4, 1]
T2I = [2, 3, 2, 3, 2, 3, 2, 1]
# top-3 texts: image 0: 9 (t1), 5 (t2), 5 (t4); image 1: 7 (t2), 7 (t3), 4 (t1 before t6); image 2: 8, 6 (t0), 6 (t1).
TOP3 = [[1, 2, 4], [2, 3, 1], [7, 0, 1]]


@pytest.mark.parametrize("block_size", [1, 2, 3, 1024])
def test_hand_computed_ranks_with_ties_and_uneven_caption_counts(block_size):
    ranks = rank_retrieval(IMAGES, TEXTS, OWNER, top_k=3, block_size=block_size)
    assert ranks.i2t_rank.tolist() == I2T
    assert ranks.t2i_rank.tolist() == T2I
    assert ranks.top_texts.tolist() == TOP3


def test_hand_computed_metrics():
    metrics = retrieval_metrics(np.array(I2T), np.array(T2I), ks=(1, 2, 5))
    assert metrics == pytest.approx(
        {
            "i2t_recall@1": 1 / 3,
            "i2t_recall@2": 1 / 3,
            "i2t_recall@5": 1.0,
            "i2t_median_rank": 3.0,
            "i2t_mean_rank": 8 / 3,
            "t2i_recall@1": 1 / 8,
            "t2i_recall@2": 5 / 8,
            "t2i_recall@5": 1.0,
            "t2i_median_rank": 2.0,
            "t2i_mean_rank": 18 / 8,
        }
    )
    assert list(metrics)[:3] == ["i2t_recall@1", "i2t_recall@2", "i2t_recall@5"]


def test_video_names():
    metrics = retrieval_metrics(np.array([1, 2]), np.array([1, 1, 3]), ks=(1,), names=("v2t", "t2v"))
    assert metrics == {
        "v2t_recall@1": 0.5,
        "v2t_median_rank": 1.5,
        "v2t_mean_rank": 1.5,
        "t2v_recall@1": 2 / 3,
        "t2v_median_rank": 1.0,
        "t2v_mean_rank": 5 / 3,
    }


def test_all_scores_tied_is_no_better_than_last():
    # A collapsed encoder: every score is equal. Position-based tie-breaking would give image 0 and text 0 rank 1.
    ranks = rank_retrieval(np.zeros((3, 4)), np.zeros((4, 4)), np.array([0, 1, 2, 2]), top_k=2)
    assert ranks.i2t_rank.tolist() == [4, 4, 3]  # 1 + every wrong text
    assert ranks.t2i_rank.tolist() == [3, 3, 3, 3]  # 1 + every other image
    assert ranks.top_texts.tolist() == [[0, 1]] * 3  # the listing still breaks ties by index
    assert retrieval_metrics(ranks.i2t_rank, ranks.t2i_rank, ks=(1,))["t2i_recall@1"] == 0.0


@pytest.mark.parametrize("block_size", [1, 2, 3, 7, 1024])
def test_exactly_duplicated_embeddings_tie_bit_for_bit(block_size):
    # Random float embeddings (dot products are rounded). Image 20 + i is a copy of image i and text 20 + i a copy
    # of text i (image i plus noise). Each text's own image and that image's twin then score the same float32 dot
    # product, and so do each image's own text and its twin's text: every rank is 2. This holds only if the
    # correct-pair score comes from the same block product as the scores it is compared with: a float64, einsum or
    # matrix-vector recomputation differs in the last bit for about half of the pairs and ranks some of them 1.
    rng = np.random.default_rng(0)
    images = rng.standard_normal((40, 64)).astype(np.float32)
    images[20:] = images[:20]
    texts = images + 0.3 * rng.standard_normal((40, 64)).astype(np.float32)
    texts[20:] = texts[:20]
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    ranks = rank_retrieval(images, texts, np.arange(40), block_size=block_size)
    assert ranks.i2t_rank.tolist() == [2] * 40
    assert ranks.t2i_rank.tolist() == [2] * 40


def _brute_force(images: np.ndarray, texts: np.ndarray, owner: np.ndarray, top_k: int):
    """The definitions, on the full score matrix, in exact integer arithmetic."""
    scores = images @ texts.T
    n, m = scores.shape
    own = owner[None, :] == np.arange(n)[:, None]
    best = np.where(own, scores, np.iinfo(np.int64).min).max(axis=1)
    i2t = 1 + ((scores >= best[:, None]) & ~own).sum(axis=1)
    correct = scores[owner, np.arange(m)]
    t2i = 1 + ((scores >= correct[None, :]) & ~own).sum(axis=0)
    top = np.array([sorted(range(m), key=lambda j: (-row[j], j))[:top_k] for row in scores])
    return i2t, t2i, top


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blocked_equals_full_matrix_on_integer_embeddings_with_many_ties(seed):
    # Small-integer embeddings give exact float32 dot products in any order, hence many genuine ties.
    rng = np.random.default_rng(seed)
    n, m = 13, 41
    images = rng.integers(-2, 3, size=(n, 6))
    texts = rng.integers(-2, 3, size=(m, 6))
    owner = rng.permutation(np.concatenate([np.arange(n), rng.integers(0, n, size=m - n)]))
    images[10:] = images[:3]  # duplicated images and texts: merged into one row inside, counted once per original
    texts[30:38] = texts[:8]
    texts[38:] = texts[8]
    i2t, t2i, top = _brute_force(images, texts, owner, top_k=5)
    scores = images @ texts.T
    strict_t2i = 1 + ((scores > scores[owner, np.arange(m)]) & (owner != np.arange(n)[:, None])).sum(axis=0)
    assert (strict_t2i != t2i).sum() >= 5  # the case is full of ties that decide ranks
    assert any(np.sum(own_scores == own_scores.max()) > 1 for own_scores in (scores[i, owner == i] for i in range(n)))
    for block_size in (1, 2, 3, 4, 7, 1024):
        ranks = rank_retrieval(images, texts, owner, top_k=5, block_size=block_size)
        assert ranks.i2t_rank.tolist() == i2t.tolist(), block_size
        assert ranks.t2i_rank.tolist() == t2i.tolist(), block_size
        assert ranks.top_texts.tolist() == top.tolist(), block_size


def test_gallery_larger_than_block_matches_unblocked_on_float_embeddings():
    rng = np.random.default_rng(3)
    images = rng.standard_normal((10, 16))
    texts = np.repeat(images, 5, axis=0) + 0.8 * rng.standard_normal((50, 16))
    owner = np.repeat(np.arange(10), 5)
    full = rank_retrieval(images, texts, owner, top_k=4, block_size=10_000)
    blocked = rank_retrieval(images, texts, owner, top_k=4, block_size=3)
    for field in ("i2t_rank", "t2i_rank", "top_texts"):
        np.testing.assert_array_equal(getattr(blocked, field), getattr(full, field))
    assert 1 < full.t2i_rank.max() <= 10 and full.i2t_rank.min() == 1  # a non-trivial ranking


def test_duplicates_equal_in_value_share_a_row_even_with_negative_zero():
    from coca_bench.metrics.retrieval import _unique_rows

    rows = np.array([[1.0, -0.0], [2.0, 3.0], [1.0, 0.0], [2.0, 3.0], [2.0, 3.5]], dtype=np.float32)
    first, of, count = _unique_rows(rows)
    assert first.tolist() == [0, 1, 4] and of.tolist() == [0, 1, 0, 1, 2] and count.tolist() == [2, 2, 1]


def test_hash_collisions_fall_back_to_an_exact_grouping(monkeypatch):
    from coca_bench.metrics import retrieval

    monkeypatch.setattr(retrieval, "_row_hashes", lambda x: np.zeros(len(x), dtype=np.uint64))  # all rows collide
    rows = np.array([[2.0, 3.0], [1.0, 0.0], [2.0, 3.0], [1.0, -0.0]], dtype=np.float32)
    first, of, count = retrieval._unique_rows(rows)
    assert first.tolist() == [0, 1] and of.tolist() == [0, 1, 0, 1] and count.tolist() == [2, 2]
    ranks = retrieval.rank_retrieval(IMAGES, TEXTS, OWNER, top_k=3, block_size=2)
    assert ranks.i2t_rank.tolist() == I2T and ranks.t2i_rank.tolist() == T2I


def test_top_k_larger_than_gallery_is_clipped():
    ranks = rank_retrieval(IMAGES, TEXTS, OWNER, top_k=50, block_size=3)
    assert ranks.top_texts.shape == (3, 8)
    assert ranks.top_texts[0].tolist() == [1, 2, 4, 7, 6, 0, 3, 5]
    assert rank_retrieval(IMAGES, TEXTS, OWNER, top_k=0).top_texts.shape == (3, 0)


# --- CLIP_benchmark reference -------------------------------------------------------------------------------------
# Transcribed from LAION-AI/CLIP_benchmark clip_benchmark/metrics/zeroshot_retrieval.py (`recall_at_k`, `batchify`
# and the thresholding in `evaluate`), used when the package itself is not importable (it breaks with numpy 2.4).
def _reference_recall_at_k(scores, positive_pairs, k):
    import torch

    nb_texts, nb_images = scores.shape
    topk_indices = torch.topk(scores, k, dim=1)[1]
    nb_positive = positive_pairs.sum(dim=1)
    topk_indices_onehot = torch.nn.functional.one_hot(topk_indices, num_classes=nb_images)
    positive_pairs_reshaped = positive_pairs.view(nb_texts, 1, nb_images)
    nb_true_positive = (topk_indices_onehot * positive_pairs_reshaped).sum(dim=(1, 2))
    return nb_true_positive / nb_positive


def _reference_batchify(func, X, Y, batch_size, device, *args, **kwargs):
    import torch

    results = []
    for start in range(0, len(X), batch_size):
        end = start + batch_size
        results.append(func(X[start:end].to(device), Y[start:end].to(device), *args, **kwargs).cpu())
    return torch.cat(results)


def _clip_benchmark_metrics(images_emb, texts_emb, owner, recall_k_list, batch_size=7):
    torch = pytest.importorskip("torch")
    try:
        from clip_benchmark.metrics.zeroshot_retrieval import batchify, recall_at_k
    except Exception:  # noqa: BLE001 - any import failure means: use the transcription
        batchify, recall_at_k = _reference_batchify, _reference_recall_at_k
    images_emb, texts_emb = torch.from_numpy(images_emb), torch.from_numpy(texts_emb)
    scores = texts_emb @ images_emb.t()
    positive_pairs = torch.zeros_like(scores, dtype=bool)
    positive_pairs[torch.arange(len(scores)), torch.from_numpy(owner)] = True
    metrics = {}
    for k in recall_k_list:
        metrics[f"image_retrieval_recall@{k}"] = (
            (batchify(recall_at_k, scores, positive_pairs, batch_size, "cpu", k=k) > 0).float().mean().item()
        )
        metrics[f"text_retrieval_recall@{k}"] = (
            (batchify(recall_at_k, scores.T, positive_pairs.T, batch_size, "cpu", k=k) > 0).float().mean().item()
        )
    return metrics


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_recall_equals_clip_benchmark_on_tie_free_random_cases(seed):
    rng = np.random.default_rng(seed)
    n = 25
    captions = rng.integers(1, 6, size=n)  # 1 to 5 captions per image
    owner = rng.permutation(np.repeat(np.arange(n), captions))
    images = rng.standard_normal((n, 24)).astype(np.float32)
    texts = images[owner] + 3.0 * rng.standard_normal((len(owner), 24)).astype(np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    ref = _clip_benchmark_metrics(images, texts, owner, [1, 5, 10])
    ranks = rank_retrieval(images, texts, owner, block_size=4)
    ours = retrieval_metrics(ranks.i2t_rank, ranks.t2i_rank, ks=(1, 5, 10))
    for k in (1, 5, 10):
        assert ours[f"i2t_recall@{k}"] == pytest.approx(ref[f"text_retrieval_recall@{k}"], abs=1e-6)
        assert ours[f"t2i_recall@{k}"] == pytest.approx(ref[f"image_retrieval_recall@{k}"], abs=1e-6)
    assert 0 < ours["t2i_recall@1"] < 1 and 0 < ours["i2t_recall@1"] < 1  # not a degenerate case


# --- per-image records and the bootstrap ---------------------------------------------------------------------------
def test_sample_records_group_captions_by_image_in_annotation_order():
    ranks = rank_retrieval(IMAGES, TEXTS, OWNER, top_k=2)
    records = retrieval_sample_records(ranks, OWNER)
    assert records == [
        {"i2t_rank": 3, "t2i_ranks": [2, 2, 3, 3, 2], "top_texts": [1, 2]},  # texts 0, 2, 3, 5, 6
        {"i2t_rank": 4, "t2i_ranks": [3], "top_texts": [2, 3]},
        {"i2t_rank": 1, "t2i_ranks": [2, 1], "top_texts": [7, 0]},  # texts 4, 7
    ]
    assert retrieval_metrics_from_samples(records) == retrieval_metrics(ranks.i2t_rank, ranks.t2i_rank)


def test_metrics_from_resampled_images_bring_their_captions():
    records = [{"i2t_rank": 3, "t2i_ranks": [2, 2, 3, 3, 2]}, {"i2t_rank": 1, "t2i_ranks": [2, 1]}]
    resampled = [records[0], records[0], records[1]]
    metrics = retrieval_metrics_from_samples(resampled, ks=(1,), names=("v2t", "t2v"))
    assert metrics["v2t_recall@1"] == pytest.approx(1 / 3)
    assert metrics["t2v_recall@1"] == pytest.approx(1 / 12)  # 12 captions, one at rank 1
    assert metrics["t2v_mean_rank"] == pytest.approx(27 / 12)
    custom = [{"rank": 1, "ranks": [1, 2]}]
    assert retrieval_metrics_from_samples(custom, ks=(1,), rank_fields=("rank", "ranks"))["t2i_recall@1"] == 0.5


# --- bad inputs ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("images", "texts", "owner", "match"),
    [
        (np.zeros((0, 3)), np.zeros((2, 3)), np.array([0, 0]), "no images"),
        (np.zeros((2, 3)), np.zeros((0, 3)), np.zeros(0, dtype=int), "no texts"),
        (np.zeros(3), np.zeros((2, 3)), np.array([0, 0]), r"\[items, dim\]"),
        (np.zeros((2, 3)), np.zeros((2, 4)), np.array([0, 1]), "one width"),
        (np.zeros((2, 3)), np.zeros((2, 3)), np.array([0, 1, 1]), "one entry per text"),
        (np.zeros((2, 3)), np.zeros((2, 3)), np.array([0.0, 1.0]), "integer"),
        (np.zeros((2, 3)), np.zeros((2, 3)), np.array([0, 2]), r"lie in \[0, 2\)"),
        (np.zeros((3, 3)), np.zeros((2, 3)), np.array([0, 0]), r"images \[1, 2\] own none"),
        (np.full((2, 3), np.nan), np.zeros((2, 3)), np.array([0, 1]), "NaN"),
    ],
)
def test_bad_inputs_are_rejected(images, texts, owner, match):
    with pytest.raises(ValueError, match=match):
        rank_retrieval(images, texts, owner)


def test_bad_parameters_and_ranks_are_rejected():
    with pytest.raises(ValueError, match="block_size"):
        rank_retrieval(IMAGES, TEXTS, OWNER, block_size=0)
    with pytest.raises(ValueError, match="top_k"):
        rank_retrieval(IMAGES, TEXTS, OWNER, top_k=-1)
    with pytest.raises(ValueError, match="1-based"):
        retrieval_metrics(np.array([0, 1]), np.array([1]))
    with pytest.raises(ValueError, match="non-empty"):
        retrieval_metrics(np.array([1]), np.array([], dtype=int))
    with pytest.raises(ValueError, match="at least 1"):
        retrieval_metrics(np.array([1]), np.array([1]), ks=(0,))
    with pytest.raises(ValueError, match="no samples"):
        retrieval_metrics_from_samples([])


def test_ranks_are_a_plain_dataclass():
    ranks = rank_retrieval(IMAGES, TEXTS, OWNER)
    assert isinstance(ranks, RetrievalRanks)
    assert ranks.i2t_rank.dtype == np.int64 and ranks.top_texts.shape == (3, 5)


def test_fp16_embeddings_rank_as_their_fp32_values_without_a_gallery_sized_copy():
    import tracemalloc

    rng = np.random.default_rng(0)
    images = rng.standard_normal((200, 64)).astype(np.float16)
    texts = (np.repeat(images.astype(np.float32), 100, axis=0) + rng.standard_normal((20_000, 64))).astype(np.float16)
    owner = np.repeat(np.arange(200), 100)
    as_fp32 = images.astype(np.float32), texts.astype(np.float32)

    def peak(*embeddings: np.ndarray):
        tracemalloc.start()
        try:
            ranks = rank_retrieval(*embeddings, owner, top_k=5, block_size=256)
            return ranks, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    (half, half_peak), (full, full_peak) = peak(images, texts), peak(*as_fp32)
    for field in ("i2t_rank", "t2i_rank", "top_texts"):
        np.testing.assert_array_equal(getattr(half, field), getattr(full, field))
    # each block is cast as it is computed: no fp32 copy of the gallery (5.1 MB here) on top of what fp32 input needs
    assert half_peak < full_peak + as_fp32[1].nbytes / 2
