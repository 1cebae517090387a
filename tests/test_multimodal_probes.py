"""SNLI-VE and NLVR2: the readers on their shipped layouts and on malformed files, NLVR2's consistency as the official
``nlvr2/eval/metrics.py`` computes it, and the rule that SNLI's text premise never reaches the model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_task

from coca_bench.data import AnnotationFormatError, DatasetNotFoundError, load_image
from coca_bench.data.nlvr2 import read_nlvr2
from coca_bench.data.snli_ve import read_snli_ve
from coca_bench.metrics.visual_reasoning import (
    nlvr2_metrics,
    nlvr2_resampler,
    per_label_accuracy,
    snli_ve_resampler,
)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_lines(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


# ------------------------------------------------------------------------------------------- SNLI-VE reader


def test_snli_ve_reader_reads_the_shipped_layout(minidata_root):
    dev = read_snli_ve(minidata_root / "snli_ve", "dev")
    rows = _lines(minidata_root / "snli_ve" / "snli_ve_dev.jsonl")
    assert len(dev) == len(rows) == 72
    first, row = dev.items[0], rows[0]
    assert first.id == row["pairID"] and first.hypothesis == row["sentence2"] and first.premise == row["sentence1"]
    assert first.gold_label == row["gold_label"] and first.image_path.name == row["Flikr30kID"]
    assert sorted({p.gold_label for p in dev.items}) == ["contradiction", "entailment", "neutral"]


def test_snli_ve_reader_finds_the_generators_data_folder_and_lists_what_it_searched(tmp_path, minidata_root):
    (tmp_path / "data").mkdir()
    shutil.copy(minidata_root / "snli_ve" / "snli_ve_dev.jsonl", tmp_path / "data")
    assert len(read_snli_ve(tmp_path, "dev")) == 72
    with pytest.raises(DatasetNotFoundError, match=r"snli_ve_test\.jsonl; searched .*data/snli_ve_test\.jsonl"):
        read_snli_ve(tmp_path, "test")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda row: row.update(gold_label="-"), r"line 2\.gold_label is '-', not one of"),
        (lambda row: row.pop("Flikr30kID"), r"line 2 has no key 'Flikr30kID'"),
    ],
)
def test_snli_ve_reader_names_the_file_and_key_of_a_malformed_line(tmp_path, minidata_root, change, message):
    rows = _lines(minidata_root / "snli_ve" / "snli_ve_dev.jsonl")
    change(rows[1])
    _write_lines(tmp_path / "snli_ve_dev.jsonl", rows)
    with pytest.raises(AnnotationFormatError, match=message) as raised:
        read_snli_ve(tmp_path, "dev")
    assert str(tmp_path / "snli_ve_dev.jsonl") in str(raised.value) and "\n" not in str(raised.value)


# ------------------------------------------------------------------------------------------- NLVR2 reader


def test_nlvr2_reader_finds_images_in_numbered_subfolders_and_by_content(minidata_root):
    train = read_nlvr2(minidata_root / "nlvr2", "train")
    dev = read_nlvr2(minidata_root / "nlvr2", "dev")
    assert len(train) == 96 and len(dev) == 24
    assert all(e.left_path.is_file() and e.right_path.is_file() for e in (*train.items, *dev.items))
    assert {e.left_path.parent.parent.name for e in train.items} == {"train"}  # images/train/<n>/...
    example = dev.items[0]
    assert example.left_path.name == example.identifier.rsplit("-", 1)[0] + "-img0.png"
    heads = {p.read_bytes()[:4] for p in (example.left_path, example.right_path)}
    assert heads == {b"\x89PNG", b"\xff\xd8\xff\xe0"}  # one real PNG, one JPEG named .png: both decode
    assert all(load_image(p).size == (128, 128) for p in (example.left_path, example.right_path))
    row = _lines(minidata_root / "nlvr2" / "data" / "dev.json")[0]
    assert example.sentence == row["sentence"] and example.label == (row["label"] == "True")


def test_nlvr2_images_in_hidden_folders_are_never_used_and_duplicates_resolve_in_sorted_order(tmp_path, minidata_root):
    """A copy in a hidden folder (``.Trash``, a sync tool's cache) or a hidden file is not the dataset's image, and a
    name found twice resolves to the same file on every machine (the first numbered folder in sorted order)."""
    root = tmp_path / "nlvr2"
    shutil.copytree(minidata_root / "nlvr2", root)
    original = read_nlvr2(root, "train").items[0].left_path
    numbered = sorted(p for p in (root / "images" / "train").iterdir() if p.is_dir())
    for folder in (root / "images" / "train" / ".Trash", numbered[-1], root / "images" / "train" / "~0"):
        folder.mkdir(exist_ok=True)
        (folder / original.name).write_bytes(b"another copy")
    (root / "images" / "train" / f"._{original.name}").write_bytes(b"AppleDouble")
    assert original.parent == numbered[0]  # so the copies in 9/ and ~0/ come after it in sorted order
    assert read_nlvr2(root, "train").items[0].left_path == original  # never .Trash/'s copy


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda row: row.update(label="yes"), r"line 3\.label is 'yes', not 'True' or 'False'"),
        (lambda row: row.update(identifier="dev-100-x-0"), r"line 3\.identifier 'dev-100-x-0' is not split-set_id"),
    ],
)
def test_nlvr2_reader_names_the_file_and_key_of_a_malformed_line(tmp_path, minidata_root, change, message):
    shutil.copytree(minidata_root / "nlvr2" / "dev", tmp_path / "dev")
    rows = _lines(minidata_root / "nlvr2" / "data" / "dev.json")
    change(rows[2])
    _write_lines(tmp_path / "dev.json", rows)
    with pytest.raises(AnnotationFormatError, match=message) as raised:
        read_nlvr2(tmp_path, "dev")
    assert str(tmp_path / "dev.json") in str(raised.value)


# ------------------------------------------------------------------------------------------- metrics


def test_nlvr2_consistency_matches_the_official_script_on_a_hand_computed_case():
    # Sentences (identifier with pair_id blanked, as metrics.py does): dev-1--0 over pairs 0, 1, 2 (one wrong);
    # dev-1--1 over pairs 0, 1 (both right); dev-2--0 over pair 3 (wrong). 4 of 6 right; 1 of 3 sentences consistent.
    identifiers = ["dev-1-0-0", "dev-1-1-0", "dev-1-2-0", "dev-1-0-1", "dev-1-1-1", "dev-2-3-0"]
    correct = [True, True, False, True, True, False]
    assert nlvr2_metrics(identifiers, correct) == {"accuracy": 4 / 6, "consistency": 1 / 3}
    samples = [{"id": i, "accuracy": int(c)} for i, c in zip(identifiers, correct)]
    evaluate = nlvr2_resampler(samples)
    counts = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 0, 1, 1, 0], [0, 0, 0, 2, 0, 1]], dtype=float)
    out = evaluate(counts)
    # Resample 2 drops both wrong examples: every drawn sentence is consistent. Resample 3 draws dev-1--1 and dev-2--0.
    assert out["accuracy"].tolist() == pytest.approx([4 / 6, 1.0, 2 / 3])
    assert out["consistency"].tolist() == pytest.approx([1 / 3, 1.0, 1 / 2])


def test_snli_ve_per_label_accuracy_and_its_resampler_agree():
    labels = ["entailment", "neutral", "contradiction", "entailment", "contradiction"]
    samples = [{"id": str(i), "gold_label": g, "accuracy": a} for i, (g, a) in enumerate(zip(labels, [1, 1, 0, 0, 0]))]
    metrics = per_label_accuracy(samples, ("entailment", "neutral", "contradiction"))
    assert metrics == {"accuracy_entailment": 0.5, "accuracy_neutral": 1.0, "accuracy_contradiction": 0.0}
    out = snli_ve_resampler(samples)(np.array([[1.0, 1, 1, 1, 1], [2.0, 0, 1, 1, 1]]))
    assert out["accuracy_entailment"].tolist() == pytest.approx([0.5, 2 / 3])
    assert np.isnan(out["accuracy_neutral"][1])


# ------------------------------------------------------------------------------------------- tasks


class _RecordingTokenizer:
    """The model's tokenizer, noting every text it is given: all model text input goes through it."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.texts = tokenizer, []

    def __call__(self, texts):
        self.texts.extend([texts] if isinstance(texts, str) else list(texts))
        return self.tokenizer(texts)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


@pytest.mark.usefixtures("clean_registry")
def test_snli_ve_gives_the_model_the_hypothesis_and_never_the_premise(tmp_path, minidata_root):
    from coca_bench.model import load_model

    model = load_model("tiny-random-s0")
    recorder = _RecordingTokenizer(model.tokenizer)
    model.tokenizer = recorder
    record, samples = run_task(tmp_path, "snli_ve", minidata_root, model=model, params=["epochs=1", "min_steps=0"])
    pairs = [*read_snli_ve(minidata_root / "snli_ve", "train").items, *read_snli_ve(minidata_root / "snli_ve").items]
    seen = set(recorder.texts)
    assert {p.hypothesis for p in pairs} <= seen
    leaked = [p.premise for p in pairs if any(p.premise in text for text in seen)]
    assert not leaked, f"SNLI's text premise reached the model: {leaked[:2]}"
    assert len(samples) == 72 and record["metrics"]["accuracy"] == pytest.approx(
        np.mean([s["accuracy"] for s in samples])
    )
    assert record["metrics"]["accuracy_neutral"] == pytest.approx(
        np.mean([s["accuracy"] for s in samples if s["gold_label"] == "neutral"])
    )


@pytest.mark.usefixtures("clean_registry")
def test_nlvr2_runs_through_the_runner_with_the_official_metrics(tmp_path, minidata_root):
    from coca_bench.model import load_model

    record, samples = run_task(tmp_path, "nlvr2", minidata_root, model=load_model("tiny-random-s0"),
                               params=["epochs=1", "min_steps=0"])  # fmt: skip
    assert len(samples) == 24 and {s["answer"] for s in samples} <= {"True", "False"}
    expected = nlvr2_metrics([s["id"] for s in samples], [bool(s["accuracy"]) for s in samples])
    assert record["metrics"]["accuracy"] == pytest.approx(expected["accuracy"])
    assert record["metrics"]["consistency"] == pytest.approx(expected["consistency"])


@pytest.mark.usefixtures("clean_registry")
def test_an_unreadable_training_image_is_a_recorded_skip_and_the_train_size_counts_what_was_trained_on(
    tmp_path, minidata_root
):
    from coca_bench.model import load_model

    shutil.copytree(minidata_root / "nlvr2", tmp_path / "data" / "nlvr2")
    first = _lines(tmp_path / "data" / "nlvr2" / "data" / "train.json")[0]
    broken = next((tmp_path / "data" / "nlvr2").rglob(first["identifier"].rsplit("-", 1)[0] + "-img1.png"))
    broken.write_bytes(b"")
    sharing = [r["identifier"] for r in _lines(tmp_path / "data" / "nlvr2" / "data" / "train.json")
               if r["right_url"].endswith(broken.name)]  # fmt: skip
    record, samples = run_task(tmp_path, "nlvr2", tmp_path / "data", model=load_model("tiny-random-s0"),
                               params=["epochs=2", "min_steps=0"])  # fmt: skip
    assert len(samples) == 24  # the evaluated split is untouched
    assert (
        sorted(s["id"] for s in record["skipped"]) == sorted(sharing)
        and "unreadable image" in record["skipped"][0]["reason"]
    )
    extra = record["config"]["extra"]
    assert extra["train_size"] == 96 - len(sharing)
    assert extra["optimizer_steps"] == 2 * 2  # two epochs of two batches of at most 64
