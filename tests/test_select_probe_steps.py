"""How probe defaults are chosen (``bench/select_probe_steps.py``): on held-out folds of the TRAINING split only, with
examples that share an image kept in one fold, and by the one-standard-error rule."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from select_probe_steps import folds_for, one_standard_error_choice, stratified_folds, training_tokens  # noqa: E402


def test_examples_with_media_of_their_own_get_stratified_folds():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    ids = [f"e{i}" for i in range(9)]
    groups = {i: (f"/{i}.jpg",) for i in ids}
    folds = folds_for(ids, labels, groups, 3, seed=0)
    np.testing.assert_array_equal(folds, stratified_folds(labels, 3, seed=0))
    for label in range(3):  # every fold holds one example of every class
        assert sorted(folds[labels == label]) == [0, 1, 2]


def test_examples_that_share_an_image_are_never_split_across_folds():
    """SNLI-VE: three hypotheses per image; NLVR2: image pairs that overlap. Linked through any shared file."""
    ids = [f"p{i}" for i in range(12)]
    groups = {f"p{i}": (f"/img{i // 3}.jpg",) for i in range(9)}  # p0-p2 share img0, ... p6-p8 share img2
    groups |= {"p9": ("/img2.jpg", "/img9.jpg"), "p10": ("/img9.jpg", "/img10.jpg"), "p11": ("/img11.jpg",)}
    labels = np.array([0, 1, 2] * 4)
    folds = folds_for(ids, labels, groups, 3, seed=0)
    components = [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9, 10], [11]]
    for members in components:
        assert len(set(folds[members])) == 1, members
    assert sorted({int(f) for f in folds}) == [0, 1, 2]  # four components dealt over three folds


def test_the_smallest_candidate_within_one_paired_standard_error_of_the_best_is_chosen():
    best_hits = np.array([[1, 1, 1, 1, 0, 1, 1, 1]])
    close = np.array([[1, 1, 1, 0, 0, 1, 1, 1]])  # one example worse: within one standard error
    far = np.array([[0, 0, 1, 0, 0, 1, 0, 1]])
    best, chosen, delta = one_standard_error_choice({50: far, 100: close, 200: best_hits})
    assert (best, chosen) == (200, 100)
    assert delta[100][0] == pytest.approx(-1 / 8) and delta[100][1] == pytest.approx(
        np.std([0] * 7 + [-1], ddof=1) / 8**0.5
    )
    assert one_standard_error_choice({50: far, 200: best_hits})[1] == 200


def test_the_training_tokens_are_taken_where_the_task_trains_and_nothing_is_predicted(minidata_root, monkeypatch):
    from coca_bench.probes import attentive

    def never(*args, **kwargs):
        raise AssertionError("the selection must stop the task before it trains or predicts")

    monkeypatch.setattr(attentive, "train_attentive_probe", never)
    params, tokens, labels, classes, groups = training_tokens("nlvr2", "tiny-random-s0", {}, minidata_root)
    lines = (minidata_root / "nlvr2" / "data" / "train.json").read_text().splitlines()
    train_ids = {json.loads(line)["identifier"] for line in lines}
    assert set(tokens.ids) == train_ids and len(labels) == len(train_ids) and classes == 2
    assert params["min_steps"] == 200  # the task's own resolved parameters
    assert all(len(groups[i]) == 2 for i in tokens.ids)  # both images of each pair
    from coca_bench import tasklib
    from coca_bench.tasklib import probes

    assert tasklib.train_and_score_attentive_probe is probes.train_and_score_attentive_probe  # restored
    assert probes.train_and_score_attentive_probe.__module__ == "coca_bench.tasklib.probes"
