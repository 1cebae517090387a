"""Visual entailment (SNLI-VE) and NLVR2 metrics, with their bootstrap resamplers (pure numpy).

- SNLI-VE: accuracy over (image, hypothesis) pairs, and per gold label (the mean accuracy of the pairs whose gold
  label it is), from per-sample ``gold_label`` and ``accuracy`` (0/1) records.
- NLVR2: accuracy ("precision" in the official script) and consistency, exactly as lil-lab/nlvr
  ``nlvr2/eval/metrics.py``: an example's sentence is its identifier ``split-set_id-pair_id-sentence_id`` with the
  ``pair_id`` blanked (``anon_label[2] = ''``), so one sentence written for a set of images covers every pair of
  that set it was paired with; consistency is the share of those sentences whose examples are all right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from coca_bench.metrics.resampling import Resampler, group_means, summing_matrix

ENTAILMENT_LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")


def per_label_accuracy(samples: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> dict[str, float]:
    """``accuracy_<label>``: the mean ``accuracy`` of the records whose ``gold_label`` is ``label`` (NaN for none)."""
    if not samples:
        raise ValueError("There are no samples to score.")
    out = {}
    for label in labels:
        hits = [float(s["accuracy"]) for s in samples if s["gold_label"] == label]
        out[f"accuracy_{label}"] = sum(hits) / len(hits) if hits else float("nan")
    return out


def per_label_accuracy_resampler(samples: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> Resampler:
    """:func:`per_label_accuracy` on every bootstrap resample at once (see :mod:`~coca_bench.metrics.resampling`)."""
    if not samples:
        raise ValueError("There are no samples to score.")
    index = {label: i for i, label in enumerate(labels)}
    groups = np.array([index[s["gold_label"]] for s in samples])
    members = summing_matrix(np.arange(groups.size), groups, (groups.size, len(labels)))
    accuracy = np.array([float(s["accuracy"]) for s in samples])

    def evaluate(counts: np.ndarray) -> dict[str, np.ndarray]:
        means = group_means(counts, members, accuracy)
        return {f"accuracy_{label}": means[:, j] for j, label in enumerate(labels)}

    return evaluate


def snli_ve_resampler(samples: Sequence[Mapping[str, Any]]) -> Resampler:
    return per_label_accuracy_resampler(samples, ENTAILMENT_LABELS)


def nlvr2_sentence_key(identifier: str) -> str:
    """The official script's key of the sentence an example belongs to: the identifier with ``pair_id`` blanked."""
    parts = identifier.split("-")
    if len(parts) < 4:
        raise ValueError(f"NLVR2 identifier {identifier!r} is not split-set_id-pair_id-sentence_id.")
    parts[2] = ""
    return "-".join(parts)


def nlvr2_metrics(identifiers: Sequence[str], correct: Sequence[bool | int]) -> dict[str, float]:
    """``accuracy`` and ``consistency`` of predictions, as ``nlvr2/eval/metrics.py`` computes them."""
    if len(identifiers) != len(correct):
        raise ValueError(f"identifiers ({len(identifiers)}) and correct ({len(correct)}) must have equal lengths.")
    if not identifiers:
        raise ValueError("There are no samples to score.")
    consistent: dict[str, bool] = {}
    for identifier, right in zip(identifiers, correct):
        key = nlvr2_sentence_key(identifier)
        consistent[key] = consistent.get(key, True) and bool(right)
    return {
        "accuracy": sum(bool(c) for c in correct) / len(correct),
        "consistency": sum(consistent.values()) / len(consistent),
    }


def nlvr2_metrics_from_samples(samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """:func:`nlvr2_metrics` from per-example records (``id`` = the identifier, ``accuracy`` 0/1)."""
    return nlvr2_metrics([str(s["id"]) for s in samples], [bool(s["accuracy"]) for s in samples])


def nlvr2_resampler(samples: Sequence[Mapping[str, Any]]) -> Resampler:
    """:func:`nlvr2_metrics_from_samples` on every bootstrap resample at once: a sentence is consistent in a resample
    when it was drawn and none of its drawn examples is wrong; the share is over the sentences drawn."""
    if not samples:
        raise ValueError("There are no samples to score.")
    keys, groups = np.unique([nlvr2_sentence_key(str(s["id"])) for s in samples], return_inverse=True)
    members = summing_matrix(np.arange(groups.size), groups, (groups.size, keys.size))
    wrong = np.array([0.0 if s["accuracy"] else 1.0 for s in samples])
    right = 1.0 - wrong

    def evaluate(counts: np.ndarray) -> dict[str, np.ndarray]:
        drawn, mistakes = counts @ members, (counts * wrong) @ members
        sentences = (drawn > 0).sum(axis=1)
        return {
            "accuracy": counts @ right / counts.sum(axis=1),
            "consistency": ((drawn > 0) & (mistakes == 0)).sum(axis=1) / np.maximum(sentences, 1),
        }

    return evaluate


__all__ = [
    "ENTAILMENT_LABELS",
    "nlvr2_metrics",
    "nlvr2_metrics_from_samples",
    "nlvr2_resampler",
    "nlvr2_sentence_key",
    "per_label_accuracy",
    "per_label_accuracy_resampler",
    "snli_ve_resampler",
]
