"""Classification metrics and the zero-shot classifier head (pure numpy).

Conventions, chosen so that every number here agrees with every other:
- Ties between class scores are broken by class index, lowest first, exactly as
  ``np.argmax`` does. A sample's top-1 prediction, its top-k hits and the
  per-class recall therefore never disagree about the same tie.
- Top-k accuracy for k larger than the number of classes is NaN (as in
  CLIP_benchmark), not 1.0, so a 3-class subset never reports a perfect "acc5".
- ``mean_per_class_recall`` equals sklearn's ``balanced_accuracy_score``: the mean,
  over the classes present in ``labels``, of each class's recall.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from coca_bench.metrics.resampling import Resampler, group_means, summing_matrix


def _check_logits_labels(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.ndim != 2:
        raise ValueError(f"logits must be a [samples, classes] array; got shape {logits.shape}.")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"labels must have one entry per row of logits ({logits.shape[0]}); got shape {labels.shape}.")
    if logits.shape[0] == 0:
        raise ValueError("There are no samples to score; check the dataset and --limit.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices; got dtype {labels.dtype}.")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(
            f"labels must lie in [0, {logits.shape[1]}); got values from {labels.min()} to {labels.max()}."
        )
    if np.isnan(logits).any():
        raise ValueError("logits contain NaN; the model produced invalid scores (try --precision fp32).")
    return logits, labels


def true_class_rank(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """0-based rank of each sample's true class (0 = top-1), ties broken by class index."""
    logits, labels = _check_logits_labels(logits, labels)
    rows = np.arange(len(labels))
    true_scores = logits[rows, labels][:, None]
    beats = logits > true_scores
    ties_before = (logits == true_scores) & (np.arange(logits.shape[1])[None, :] < labels[:, None])
    return (beats | ties_before).sum(axis=1)


def topk_hits(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per-sample booleans: is the true class among the top ``k`` scores?"""
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}.")
    return true_class_rank(logits, labels) < k


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, ks: Iterable[int] = (1, 5)) -> dict[str, float]:
    """``{"acc1": ..., "acc5": ...}``: fraction of samples whose true class is in the top k; NaN when k > classes."""
    logits, labels = _check_logits_labels(logits, labels)
    ranks = true_class_rank(logits, labels)
    num_classes = logits.shape[1]
    return {f"acc{k}": float("nan") if k > num_classes else float(np.mean(ranks < k)) for k in ks}


def mean_per_class_recall(preds: np.ndarray, labels: np.ndarray) -> float:
    """Mean over the classes present in ``labels`` of the fraction of that class predicted correctly."""
    preds = np.asarray(preds)
    labels = np.asarray(labels)
    if preds.shape != labels.shape or preds.ndim != 1:
        raise ValueError(
            f"preds and labels must be 1-D arrays of equal length; got shapes {preds.shape} and {labels.shape}."
        )
    if labels.size == 0:
        raise ValueError("There are no samples to score; check the dataset and --limit.")
    classes = np.unique(labels)
    recalls = [np.mean(preds[labels == c] == c) for c in classes]
    return float(np.mean(recalls))


def zero_shot_classifier(class_text_embeddings: np.ndarray) -> np.ndarray:
    """Class weights ``[C, D]`` from template embeddings ``[C, T, D]``.

    Each template embedding is L2-normalised, the templates are averaged, and the mean
    is normalised again (CLIP / open_clip ``build_zero_shot_classifier``), so that every
    class competes on direction alone whatever its number of templates.
    """
    emb = np.asarray(class_text_embeddings, dtype=np.float64)
    if emb.ndim != 3 or 0 in emb.shape:
        raise ValueError(
            f"class_text_embeddings must be a non-empty [classes, templates, dim] array; got shape {emb.shape}."
        )
    norms = np.linalg.norm(emb, axis=-1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("A class text embedding has zero norm; the text encoder produced a degenerate embedding.")
    mean = (emb / norms).mean(axis=1)
    mean_norms = np.linalg.norm(mean, axis=-1, keepdims=True)
    if (mean_norms == 0).any():
        raise ValueError("A class's template embeddings cancel out to zero; its zero-shot weight is undefined.")
    return (mean / mean_norms).astype(np.float32)


def classification_metrics_from_samples(
    samples: Sequence[Mapping[str, Any]], ks: Iterable[int] = (1, 5)
) -> dict[str, float]:
    """Recompute accuracy and mean per-class recall from per-sample records (for the bootstrap).

    Each record carries ``label``, ``pred`` (top-1 class) and ``acc{k}`` (0/1 hit); a missing
    ``acc{k}`` field means k exceeded the number of classes, so that accuracy is NaN.
    """
    if not samples:
        raise ValueError("There are no samples to score.")
    metrics: dict[str, float] = {}
    for k in ks:
        name = f"acc{k}"
        hits = [s.get(name) for s in samples]
        metrics[name] = float("nan") if any(h is None for h in hits) else float(np.mean(np.asarray(hits, dtype=float)))
    metrics["mean_per_class_recall"] = mean_per_class_recall(
        np.array([s["pred"] for s in samples]), np.array([s["label"] for s in samples])
    )
    return metrics


def classification_resampler(samples: Sequence[Mapping[str, Any]], ks: Iterable[int] = (1, 5)) -> Resampler:
    """:func:`classification_metrics_from_samples` on every bootstrap resample at once (see
    :mod:`~coca_bench.metrics.resampling`): per-class recalls are count-weighted group means, averaged over the
    classes the resample holds, as ``np.unique(labels)`` keeps only those."""
    if not samples:
        raise ValueError("There are no samples to score.")
    classes, codes = np.unique(np.array([s["label"] for s in samples]), return_inverse=True)
    correct = np.array([s["pred"] for s in samples]) == classes[codes]
    by_class = summing_matrix(np.arange(codes.size), codes, (codes.size, classes.size))
    hits = {f"acc{k}": [s.get(f"acc{k}") for s in samples] for k in ks}
    missing = {name: np.array([h is None for h in column], dtype=np.float64) for name, column in hits.items()}
    filled = {name: np.array([h or 0 for h in column], dtype=np.float64) for name, column in hits.items()}

    def evaluate(counts: np.ndarray) -> dict[str, np.ndarray]:
        size = counts.sum(axis=1)
        out = {name: np.where(counts @ missing[name] > 0, np.nan, counts @ filled[name] / size) for name in hits}
        out["mean_per_class_recall"] = np.nanmean(group_means(counts, by_class, correct), axis=1)
        return out

    return evaluate


def classification_sample_records(
    ids: Sequence[str], logits: np.ndarray, labels: np.ndarray, class_labels: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """One record per sample: ``label``, ``pred`` (top-1) and ``acc{k}`` hits for k = 1, 5 (no ``acc5`` field with
    fewer than 5 classes, which makes that metric NaN). ``class_labels`` maps logit columns to the dataset's label
    space (a task scoring a subset of the classes); by default columns are labels."""
    logits, labels = _check_logits_labels(logits, labels)
    if len(ids) != len(labels):
        raise ValueError(f"ids must have one entry per row of logits ({len(labels)}); got {len(ids)}.")
    columns = list(range(logits.shape[1])) if class_labels is None else list(class_labels)
    preds = logits.argmax(axis=1)
    hits = {f"acc{k}": topk_hits(logits, labels, k) for k in (1, 5) if k <= logits.shape[1]}
    return [
        {
            "id": sample_id,
            "label": columns[labels[i]],
            "pred": columns[preds[i]],
            **{m: int(h[i]) for m, h in hits.items()},
        }
        for i, sample_id in enumerate(ids)
    ]
