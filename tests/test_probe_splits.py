"""Probes never score what they trained on (issue 16 §5): an evaluation split that is, or shares files with, the
training split is refused with one line naming both, before the model is touched. Files are compared as files (a
symlinked folder, a hard link), never by split name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import PixelStatsModel, run_task
from PIL import Image

from coca_bench.data.records import ClassificationSample, ClassificationSet, VqaQuestion, VqaSet
from coca_bench.data.splits import SplitOverlapError, require_disjoint_splits

pytestmark = pytest.mark.usefixtures("clean_registry")


def _image(path: Path, shade: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (shade, 0, 0)).save(path)
    return path


def _classification(split: str, paths: list[Path]) -> ClassificationSet:
    items = tuple(ClassificationSample(id=f"{split}/{i}", path=p, label=0) for i, p in enumerate(paths))
    return ClassificationSet(items=items, split=split, annotation_files=())


def test_overlap_is_judged_by_file_not_by_name(tmp_path: Path):
    train = [_image(tmp_path / "train" / f"{i}.png", i) for i in range(3)]
    held_out = [_image(tmp_path / "val" / f"{i}.png", 100 + i) for i in range(2)]
    require_disjoint_splits(_classification("train", train), _classification("val", held_out))  # distinct files

    (tmp_path / "train_copy").symlink_to(tmp_path / "train", target_is_directory=True)
    os.link(train[1], tmp_path / "val" / "linked.png")
    copy = tmp_path / "val" / "copied.png"
    copy.write_bytes(train[2].read_bytes())  # same bytes, another file: not the same file
    cases = {
        "same split": (train[:1], train[0]),
        "symlinked folder": ([tmp_path / "train_copy" / "0.png"], tmp_path / "train_copy" / "0.png"),
        "hard link": ([*held_out, tmp_path / "val" / "linked.png"], tmp_path / "val" / "linked.png"),
        "missing file, same path": ([tmp_path / "train" / "gone.png"], tmp_path / "train" / "gone.png"),
    }
    train_set = _classification("train", [*train, tmp_path / "train" / "gone.png"])
    for case, (paths, example) in cases.items():
        with pytest.raises(SplitOverlapError) as refused:
            require_disjoint_splits(train_set, _classification("other", paths))
        message = str(refused.value)
        assert "\n" not in message and "'other'" in message and "'train'" in message, case
        assert str(example) in message, case
    require_disjoint_splits(_classification("train", train), _classification("val", [*held_out, copy]))

    # VQA records carry ``image_path``; the error is a user error the CLI prints as one line (exit 2)
    question = lambda i, path: VqaQuestion(question_id=i, image_id=i, image_path=path, question="?", answers=())  # noqa: E731
    vqa_train = VqaSet(items=(question(1, train[0]),), split="train2014", annotation_files=())
    with pytest.raises(SplitOverlapError, match="'val2014'.*'train2014'"):
        require_disjoint_splits(vqa_train, VqaSet(items=(question(2, train[0]),), split="val2014", annotation_files=()))
    from coca_bench.errors import CocaBenchError

    assert issubclass(SplitOverlapError, CocaBenchError)


class UntouchableModel(PixelStatsModel):
    """A stand-in that fails the test if a task encodes anything: refusals must come before the model is used."""

    def encode_image(self, pixels, normalize=True):
        raise AssertionError("the model was used before the splits were checked")

    image_tokens = encode_text = encode_image


@pytest.mark.parametrize(
    ("task", "params"),
    [
        ("imagenet_linear_probe", ["eval_split=train"]),
        ("linear_probe", ["eval_split=train"]),
        ("imagenet_attentive_probe", ["eval_split=train"]),
        ("kinetics_attentive_probe", ["split=train"]),
        ("vqav2", ["mode=probe", "split=train2014"]),
    ],
)
def test_every_probe_refuses_to_score_its_training_split(task, params, tmp_path, minidata_root):
    with pytest.raises(SplitOverlapError, match="training split 'train(2014)?'"):
        run_task(tmp_path, task, minidata_root, model=UntouchableModel(), params=params)
    assert not (tmp_path / "out" / "m" / f"{task}.json").exists()


def test_linear_probe_eval_split_train_is_one_line_user_error(tmp_path, minidata_root, capsys, monkeypatch):
    """Through the CLI, as the issue reproduced it: exit 2, one ``error:`` line naming both splits, no result."""
    from coca_bench.cli import main

    monkeypatch.setenv("COCA_BENCH_CACHE", str(tmp_path / "cache"))
    code = main([
        "--tasks", "linear_probe", "--param", "linear_probe.eval_split=train", "--data-root", str(minidata_root),
        "--checkpoint", "tiny-random-s0", "--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "features"),
        "--no-progress", "--num-workers", "0", "--no-compare",
    ])  # fmt: skip
    stderr = capsys.readouterr().err
    assert code == 2 and "Traceback" not in stderr, stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert "evaluation split 'train'" in line and "training split 'train'" in line, line
    assert not list((tmp_path / "out").rglob("linear_probe.json"))


def _colours(root: Path) -> None:
    """Three colour classes in ImageFolder layout, train and test."""
    colours = {"apple": (220, 30, 30), "grass": (30, 200, 40), "sky": (40, 60, 230)}
    for split, count in (("train", 4), ("test", 2)):
        for name, colour in colours.items():
            for i in range(count):
                path = root / split / name / f"{split}{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (16, 16), tuple(min(255, v + 9 * i) for v in colour)).save(path)


@pytest.mark.parametrize("share", ["symlinked folder", "one hard-linked image"])
def test_a_split_named_otherwise_that_shares_files_is_refused(share, tmp_path):
    data = tmp_path / "data"
    _colours(data / "colours")
    if share == "symlinked folder":
        (data / "colours" / "train_copy").symlink_to(data / "colours" / "train", target_is_directory=True)
        split, shared = "train_copy", data / "colours" / "train_copy" / "apple" / "train0.png"
    else:
        (data / "colours" / "train_copy").mkdir()
        for name in ("apple", "grass", "sky"):
            (data / "colours" / "test" / name).rename(data / "colours" / "train_copy" / name)
        shared = data / "colours" / "train_copy" / "sky" / "linked.png"
        os.link(data / "colours" / "train" / "sky" / "train3.png", shared)
        split = "train_copy"
    with pytest.raises(SplitOverlapError) as refused:
        run_task(tmp_path, "linear_probe", data, model=UntouchableModel(),
                 params=["dataset=colours", f"eval_split={split}"])  # fmt: skip
    message = str(refused.value)
    assert f"evaluation split '{split}'" in message and "training split 'train'" in message
    assert str(shared) in message


def test_vqa_zero_shot_modes_may_evaluate_any_split(tmp_path, minidata_root):
    """In ``rank`` and ``generate`` modes the train split supplies only the candidate answers: no refusal."""
    from coca_bench.model import load_model

    record, samples = run_task(tmp_path, "vqav2", minidata_root, model=load_model("tiny-random-s0"),
                               params=["split=train2014"], limit=2)  # fmt: skip
    assert len(samples) == 2 and record["config"]["params"]["split"] == "train2014"
