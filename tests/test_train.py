"""`coca-bench train`: the paper's joint loss (exactly, through the compact vocabulary), falling loss, exact resume,
the shipped format, and training data that is deterministic and never an evaluation image."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from coca_bench.model import CoCa, get_preset, load_checkpoint
from coca_bench.model.preprocess import build_preprocess
from coca_bench.model.tokenizer import build_tokenizer
from coca_bench.model.video import encode_video, video_decoder_tokens
from coca_bench.training.data import TrainingData, TrainingDataConfig, TrainingExample
from coca_bench.training.trainer import (
    FINAL_DIR,
    STATE_FILE,
    TrainConfig,
    Trainer,
    Vocabulary,
    collate,
    compact_config,
    expand_network,
    joint_loss,
    main,
    step_dir,
)

# The paper layout and cascade poolers of the demo preset, at the tiny preset's size: seconds per run.
TINY = TrainConfig(
    preset="tiny-paper", steps=6, batch_size=8, lr=2e-3, warmup_steps=2, early_step=2, save_every=3, threads=2,
    data=TrainingDataConfig(size=48, num_frames=2),
)  # fmt: skip


def _batch_parts(config: TrainConfig, count: int) -> tuple[list[TrainingExample], Vocabulary, object, object]:
    data = TrainingData(config.data)
    cfg = get_preset(config.preset)
    tokenizer = build_tokenizer("clip_bpe", cfg.text.context_length)
    vocab = Vocabulary.from_texts(list(data.texts()), tokenizer, cfg.text.vocab_size)
    return [data.example(i) for i in range(count)], vocab, tokenizer, build_preprocess(cfg.preprocess)


def test_joint_loss_is_coca_loss_of_the_exported_full_vocabulary_model():
    """Captions only: the compact network's loss (zero-logit tokens as one column) equals CoCa.loss of the exported
    49,408-token network, whose inactive embedding rows and head columns are zeros."""
    config = dataclasses.replace(TINY, data=dataclasses.replace(TINY.data, caption_weight=1.0, label_weight=0.0,
                                                                vqa_weight=0.0, video_weight=0.0))  # fmt: skip
    examples, vocab, tokenizer, preprocess = _batch_parts(config, 6)
    cfg = get_preset(config.preset)
    torch.manual_seed(0)
    compact = CoCa(compact_config(cfg, vocab)).eval()
    full = expand_network(compact, vocab, cfg)
    batch = collate(examples, preprocess, tokenizer, vocab)
    ours = joint_loss(compact, batch, vocab.full_size - vocab.size)
    reference = full.loss(batch.images, tokenizer([e.text for e in examples]))
    for name in ("contrastive_loss", "caption_loss", "loss"):
        torch.testing.assert_close(ours[name], reference[name], rtol=1e-5, atol=1e-5)
    assert (
        float(ours["caption_loss"].detach()) > 0 and cfg.caption_loss_weight == 2 and cfg.contrastive_loss_weight == 1
    )
    inactive = torch.ones(vocab.full_size, dtype=torch.bool)
    inactive[vocab.active] = False
    assert not full.text.token_embedding.weight[inactive].any() and not full.decoder.lm_head[:, inactive].any()


def test_clips_and_vqa_prompts_in_the_joint_loss():
    """A clip is the video tasks' mean of normalised frame embeddings and attends to its frames' decoder tokens
    averaged over time; a VQA text is no contrastive pair and only its answer (and end token) is a target; a
    class-name prompt is a contrastive pair and no captioning target."""
    examples, vocab, tokenizer, preprocess = _batch_parts(TINY, 40)
    kinds = {(e.kind, e.captioned) for e in examples}
    assert kinds >= {("caption", True), ("label", False), ("vqa", True), ("video", True), ("video", False)}, kinds
    cfg = get_preset(TINY.preset)
    torch.manual_seed(1)
    compact = CoCa(compact_config(cfg, vocab)).eval()
    full = expand_network(compact, vocab, cfg)
    batch = collate(examples, preprocess, tokenizer, vocab)
    ours = joint_loss(compact, batch, vocab.full_size - vocab.size)

    ordered = [e for e in examples if e.kind != "video"] + [e for e in examples if e.kind == "video"]
    stills = batch.images[: batch.num_images]
    frames = batch.images[batch.num_images :].view(-1, batch.num_frames, *batch.images.shape[1:])
    image_latent = torch.cat([full.encode_image(stills), encode_video(full, frames)])
    image_tokens = torch.cat([full.image_features(stills)[1], video_decoder_tokens(full, frames, "mean")])
    ids = tokenizer([e.text for e in ordered])
    text_latent, token_outputs = full.text(ids)
    mask = torch.tensor([e.kind != "vqa" for e in ordered])
    logits = full.decoder(token_outputs[:, :-1], image_tokens)
    labels = ids[:, 1:].clone()
    for row, example in enumerate(ordered):
        if not example.captioned:  # class-name prompts: contrastive only
            labels[row] = 0
        elif example.kind == "vqa":
            answer = tokenizer([example.text.rsplit(" ", 1)[1]])[0]
            targets = labels[row][labels[row] != 0]
            assert torch.equal(targets[-2:], torch.tensor([answer[1], tokenizer.eot_id]))  # one-token answers
            labels[row, : (labels[row] != 0).sum() - 2] = 0
    caption = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=0)
    contrastive_logits = full.logit_scale.exp() * image_latent[mask] @ F.normalize(text_latent, dim=-1)[mask].T
    targets = torch.arange(int(mask.sum()))
    contrastive = (F.cross_entropy(contrastive_logits, targets) + F.cross_entropy(contrastive_logits.T, targets)) / 2
    torch.testing.assert_close(ours["caption_loss"], caption, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours["contrastive_loss"], contrastive, rtol=1e-5, atol=1e-5)


def test_training_lowers_the_joint_loss(tmp_path: Path):
    config = dataclasses.replace(TINY, steps=40, early_step=None, save_every=40, warmup_steps=5)
    trainer = Trainer(config, tmp_path / "run", progress=False)
    trainer.start(resume=False)
    trainer.train()
    losses = [row["loss"] for row in trainer.history]
    captions = [row["caption_loss"] for row in trainer.history]
    assert len(losses) == 40
    # 40 steps of 8 over 48 examples: both terms fall well below where they start (captioning from log 49408 = 10.8)
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses
    assert np.mean(captions[-5:]) < 0.6 * np.mean(captions[:3]), captions
    assert (tmp_path / "run" / FINAL_DIR / "model.safetensors").is_file()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trainer, Path]:
    folder = tmp_path_factory.mktemp("whole")
    whole = Trainer(TINY, folder, progress=False)
    whole.start(resume=False)
    whole.train()
    return whole, folder


def test_a_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path: Path, uninterrupted):
    whole, whole_dir = uninterrupted
    first = Trainer(TINY, tmp_path / "split", progress=False)
    first.start(resume=False)
    first.train(until=4)  # stops after step 4 and saves its state there
    assert first.step == 4
    torch.manual_seed(123)  # whatever the process did in between must not matter
    resumed = Trainer(TINY, tmp_path / "split", progress=False)
    resumed.start(resume=True)
    assert resumed.step == 4
    resumed.train()

    for key, value in whole.network.state_dict().items():
        assert torch.equal(value, resumed.network.state_dict()[key]), key
    assert [r["loss"] for r in whole.history] == [r["loss"] for r in resumed.history]
    for folder in (FINAL_DIR, step_dir(TINY.early_step)):
        a = (whole_dir / folder / "model.safetensors").read_bytes()
        b = (tmp_path / "split" / folder / "model.safetensors").read_bytes()
        assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest(), folder


def test_resuming_from_a_state_saved_mid_run(tmp_path: Path, uninterrupted):
    """The state on disk (saved every ``save_every`` steps) is what a crashed run resumes from."""
    whole, _ = uninterrupted
    crashed = Trainer(TINY, tmp_path / "crash", progress=False)
    crashed.start(resume=False)
    crashed.train(until=5)  # saved at step 3 (save_every) and at 5 (where it stopped)
    state = torch.load(tmp_path / "crash" / STATE_FILE, weights_only=True)
    assert state["step"] == 5
    resumed = Trainer(TINY, tmp_path / "crash", progress=False)
    resumed.start(resume=True)
    resumed.train()
    for key, value in whole.network.state_dict().items():
        assert torch.equal(value, resumed.network.state_dict()[key]), key
    with pytest.raises(ValueError, match="--resume"):
        Trainer(TINY, tmp_path / "crash", progress=False).start(resume=False)
    with pytest.raises(ValueError, match="lr"):
        Trainer(dataclasses.replace(TINY, lr=1e-4), tmp_path / "crash", progress=False).start(resume=True)


def test_train_command_ships_fp16_checkpoints_with_cards(tmp_path: Path):
    args = ["--output", str(tmp_path / "run"), "--preset", "tiny-paper", "--steps", "4", "--batch-size", "8",
            "--early-step", "2", "--save-every", "2", "--data-size", "32", "--ship", str(tmp_path / "ship"),
            "--name", "mini", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    final = load_checkpoint(str(tmp_path / "run" / FINAL_DIR)).network
    shipped = load_checkpoint(str(tmp_path / "ship" / "mini")).network
    for key, value in final.state_dict().items():
        expected = value.half().float() if value.is_floating_point() else value
        assert torch.equal(shipped.state_dict()[key], expected), key
    size = (tmp_path / "ship" / "mini" / "model.safetensors").stat().st_size
    assert size < 0.3 * (tmp_path / "run" / FINAL_DIR / "model.safetensors").stat().st_size
    for name, steps in (("mini", 4), ("mini-early", 2)):
        card = (tmp_path / "ship" / name / "MODEL_CARD.md").read_text()
        assert f"Steps: {steps} of 4" in card and "python run_suite.py train --output" in card
        assert "--resume" not in card and "cannot be compared with any paper number" in card


def test_training_data_is_deterministic_and_never_an_evaluation_image(minidata_root: Path):
    data = TrainingData(TrainingDataConfig(size=400))
    again = TrainingData(TrainingDataConfig(size=400))
    for index in (0, 7, 399):
        a, b = data.example(index), again.example(index)
        assert a.text == b.text and a.kind == b.kind
        assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.frames, b.frames))
        assert data.example(index, render=False).text == a.text
    other = TrainingData(TrainingDataConfig(size=400, seed=2))
    assert [other.example(i).text for i in range(20)] != [data.example(i).text for i in range(20)]
    with pytest.raises(IndexError):
        data.example(400)

    from PIL import Image

    def digest(image: Image.Image) -> bytes:
        return hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).digest()

    files = [p for p in minidata_root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")]
    assert {p.relative_to(minidata_root).parts[0] for p in files} >= {"imagenet", "coco", "vqav2", "nocaps"}
    evaluation = {digest(Image.open(p)) for p in files}
    assert len(evaluation) > 150  # every image the mini datasets hold (VQA reuses COCO's)
    training = {digest(frame) for i in range(len(data)) for frame in data.example(i).frames}
    assert not training & evaluation
