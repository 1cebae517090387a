import math

import numpy as np
import pytest

from coca_bench.metrics.classification import (
    classification_metrics_from_samples,
    mean_per_class_recall,
    topk_accuracy,
    topk_hits,
    true_class_rank,
    zero_shot_classifier,
)

# 4 samples, 6 classes. True classes: 0, 1, 2, 5.
LOGITS = np.array(
    [
        [9, 1, 2, 3, 4, 5],  # class 0 is top-1
        [1, 5, 9, 8, 7, 6],  # class 1 ranks 5th (9, 8, 7, 6 are above)
        [0, 9, 8, 1, 2, 3],  # class 2 ranks 2nd
        [6, 5, 4, 3, 2, 1],  # class 5 ranks last (6th)
    ],
    dtype=float,
)
LABELS = np.array([0, 1, 2, 5])


def test_topk_accuracy_hand_computed():
    acc = topk_accuracy(LOGITS, LABELS, ks=(1, 2, 5))
    assert acc == {"acc1": 0.25, "acc2": 0.5, "acc5": 0.75}


def test_topk_accuracy_is_nan_when_k_exceeds_classes():
    acc = topk_accuracy(LOGITS[:, :3], np.array([0, 1, 2, 0]), ks=(1, 5))
    assert math.isnan(acc["acc5"]) and acc["acc1"] == 0.5


def test_ties_break_towards_lower_class_index_like_argmax():
    logits = np.array([[3.0, 3.0, 1.0], [3.0, 3.0, 1.0]])
    labels = np.array([0, 1])
    assert true_class_rank(logits, labels).tolist() == [0, 1]
    assert topk_hits(logits, labels, 1).tolist() == [True, False]
    assert logits.argmax(axis=1).tolist() == [0, 0]  # the same tie-break as the top-1 prediction


def test_per_sample_hits_match_accuracy():
    hits = topk_hits(LOGITS, LABELS, 5)
    assert hits.tolist() == [True, True, True, False]


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="labels must lie"):
        topk_accuracy(LOGITS, np.array([0, 1, 2, 6]))
    with pytest.raises(ValueError, match="NaN"):
        topk_accuracy(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="no samples"):
        topk_accuracy(np.zeros((0, 3)), np.zeros(0, dtype=int))


def test_mean_per_class_recall_hand_computed_with_a_class_never_predicted():
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    preds = np.array([0, 0, 0, 1, 0, 0, 2])  # class 1 is never predicted: recall 0
    # recalls: class 0 = 3/4, class 1 = 0/2, class 2 = 1/1 -> mean 0.5833...
    assert mean_per_class_recall(preds, labels) == pytest.approx((0.75 + 0.0 + 1.0) / 3)
    # plain accuracy differs (4/7), so the metric is really per-class
    assert mean_per_class_recall(preds, labels) != pytest.approx(4 / 7)


def test_mean_per_class_recall_ignores_classes_only_predicted():
    labels = np.array([0, 0, 1])
    preds = np.array([0, 3, 1])  # class 3 never occurs in labels: not averaged in
    assert mean_per_class_recall(preds, labels) == pytest.approx((0.5 + 1.0) / 2)


def test_zero_shot_classifier_normalises_templates_before_averaging():
    # Class 0 has one huge and one small template embedding, pointing in different directions.
    emb = np.array(
        [
            [[100.0, 0.0], [0.0, 1.0]],
            [[1.0, 1.0], [2.0, 2.0]],
        ]
    )
    weights = zero_shot_classifier(emb)
    s = 1 / math.sqrt(2)
    # Without per-template normalisation class 0 would point almost exactly along x.
    np.testing.assert_allclose(weights, [[s, s], [s, s]], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(weights, axis=1), 1.0, atol=1e-6)


def test_zero_shot_classifier_rejects_wrong_shape_and_zero_vectors():
    with pytest.raises(ValueError, match="classes, templates, dim"):
        zero_shot_classifier(np.ones((3, 4)))
    with pytest.raises(ValueError, match="zero norm"):
        zero_shot_classifier(np.zeros((1, 2, 3)))


def test_metrics_from_samples_match_the_direct_computation():
    preds = LOGITS.argmax(axis=1)
    samples = [
        {"id": str(i), "label": int(y), "pred": int(p), "acc1": int(h1), "acc5": int(h5)}
        for i, (y, p, h1, h5) in enumerate(
            zip(LABELS, preds, topk_hits(LOGITS, LABELS, 1), topk_hits(LOGITS, LABELS, 5))
        )
    ]
    recomputed = classification_metrics_from_samples(samples)
    direct = topk_accuracy(LOGITS, LABELS)
    assert recomputed["acc1"] == direct["acc1"] and recomputed["acc5"] == direct["acc5"]
    assert recomputed["mean_per_class_recall"] == mean_per_class_recall(preds, LABELS)


def test_metrics_from_samples_nan_when_topk_field_absent():
    samples = [{"label": 0, "pred": 0, "acc1": 1}, {"label": 1, "pred": 0, "acc1": 0}]
    metrics = classification_metrics_from_samples(samples)
    assert metrics["acc1"] == 0.5 and math.isnan(metrics["acc5"])
