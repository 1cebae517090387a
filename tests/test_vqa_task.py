"""vqav2 through the runner: the three modes, the official accuracy of what is predicted, and the candidate list."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_task

from coca_bench.data import read_vqa
from coca_bench.metrics.vqa import vqa_accuracy

pytestmark = pytest.mark.usefixtures("clean_registry")


@pytest.fixture(scope="module")
def tiny_model():
    from coca_bench.model import load_model

    return load_model("tiny-random-s0")


def _questions(minidata_root):
    return {str(q.question_id): q for q in read_vqa(minidata_root / "vqav2", "val2014").items}


def test_rank_mode_predicts_the_argmax_of_the_answer_log_likelihoods(tmp_path, minidata_root, tiny_model):
    record, samples = run_task(tmp_path, "vqav2", minidata_root, model=tiny_model, limit=6)
    questions = _questions(minidata_root)
    train = read_vqa(minidata_root / "vqav2", "train2014")
    counts = {}
    for q in train.items:
        counts[q.multiple_choice_answer] = counts.get(q.multiple_choice_answer, 0) + 1
    candidates = sorted(counts, key=lambda a: (-counts[a], a))
    assert record["config"]["extra"]["num_candidates"] == len(candidates)
    assert record["config"]["extra"]["majority_answer"] == candidates[0]
    from PIL import Image

    for sample in samples:
        q = questions[sample["id"]]
        pixels = tiny_model.preprocess(Image.open(q.image_path).convert("RGB"))[None]
        scores = tiny_model.answer_log_likelihoods(pixels, [f"question: {q.question} answer:"], candidates)[0]
        assert sample["answer"] == candidates[int(scores.argmax())]
        assert sample["accuracy"] == vqa_accuracy(sample["answer"], q.answers)
        assert sample["answer_type"] == q.answer_type
    assert record["metrics"]["accuracy"] == pytest.approx(np.mean([s["accuracy"] for s in samples]))


def test_an_oracle_scorer_gets_the_official_accuracy_of_the_most_common_answers(tmp_path, minidata_root, tiny_model):
    """Score each question's most common answer highest: accuracy is then the official score of those answers."""
    questions = _questions(minidata_root)
    by_prompt = {f"question: {q.question} answer:": q for q in questions.values()}

    def oracle(pixels, prompts, candidates):
        best = [by_prompt[p].multiple_choice_answer for p in prompts]
        return torch.tensor([[1.0 if c == b else 0.0 for c in candidates] for b in best])

    original = tiny_model.answer_log_likelihoods
    tiny_model.answer_log_likelihoods = oracle
    try:
        record, samples = run_task(tmp_path, "vqav2", minidata_root, model=tiny_model, params=["num_candidates=100"])
    finally:
        tiny_model.answer_log_likelihoods = original
    expected = {qid: vqa_accuracy(q.multiple_choice_answer, q.answers) for qid, q in questions.items()}
    in_list = {s["id"]: s["accuracy"] for s in samples}
    for qid, accuracy in in_list.items():
        if questions[qid].multiple_choice_answer == samples[[s["id"] for s in samples].index(qid)]["answer"]:
            assert accuracy == pytest.approx(expected[qid])
    assert record["metrics"]["accuracy"] > record["config"]["extra"]["majority_answer_accuracy"]
    by_type = {t: [s["accuracy"] for s in samples if s["answer_type"] == t] for t in ("yes/no", "number", "other")}
    for answer_type, values in by_type.items():
        assert record["metrics"][f"accuracy_{answer_type}"] == pytest.approx(np.mean(values))


def test_generate_and_probe_modes_run_are_recorded_and_deterministic(tmp_path, minidata_root, tiny_model):
    generated, samples = run_task(tmp_path / "g", "vqav2", minidata_root, model=tiny_model, params=["mode=generate"],
                                  limit=4)  # fmt: skip
    assert generated["config"]["params"]["mode"] == "generate" and len(samples) == 4
    assert all(isinstance(s["answer"], str) for s in samples)
    probe, probe_samples = run_task(tmp_path / "p", "vqav2", minidata_root, model=tiny_model,
                                    params=["mode=probe", "epochs=5"])  # fmt: skip
    again, again_samples = run_task(tmp_path / "p2", "vqav2", minidata_root, model=tiny_model,
                                    params=["mode=probe", "epochs=5"])  # fmt: skip
    assert probe_samples == again_samples and len(probe_samples) == 48
    candidates = json.loads(json.dumps(probe["config"]["extra"]))["num_candidates"]
    assert candidates > 2
    with pytest.raises(ValueError, match='parameter mode="guess" is not allowed'):
        run_task(tmp_path / "x", "vqav2", minidata_root, model=tiny_model, params=["mode=guess"])


def test_zero_shot_modes_need_only_the_train_annotations_never_the_train_images(tmp_path, minidata_root, tiny_model):
    """A val evaluation without the 13 GB of train2014 images: rank and generate read only the train answers."""
    import shutil

    from coca_bench.data import DatasetNotFoundError

    root = tmp_path / "data"
    shutil.copytree(minidata_root / "vqav2", root / "vqav2", ignore=shutil.ignore_patterns("train2014"))
    assert not (root / "vqav2" / "train2014").exists()
    for mode in ("rank", "generate"):
        record, samples = run_task(tmp_path / mode, "vqav2", root, model=tiny_model, params=[f"mode={mode}"], limit=2)
        assert len(samples) == 2 and record["config"]["extra"]["num_candidates"] > 1
    with pytest.raises(DatasetNotFoundError, match="COCO_train2014_"):  # the probe trains on them: it must say so
        run_task(tmp_path / "probe", "vqav2", root, model=tiny_model, params=["mode=probe"], limit=2)
