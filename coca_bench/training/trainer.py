"""``coca-bench train``: train a small CoCa from scratch on generated scenes (the shipped ``demo`` checkpoints).

The objective is the paper's: ``1 * L_con + 2 * L_cap`` (:meth:`CoCa.loss`'s weights), a symmetric InfoNCE loss with
a learnable temperature plus teacher-forced captioning cross-entropy over the full CLIP BPE vocabulary. Data comes
from :mod:`coca_bench.training.data` (captions, class names in prompts, VQA text, short clips).

Why a compact vocabulary: the training text uses a few hundred of the tokenizer's 49,408 tokens, and at width 128
the two vocabulary matrices would hold 12.6M of the model's 14.6M parameters. Training keeps only the rows of the
tokens its data contains; every other token embedding and vocabulary-head column is exactly zero, so its logit is
exactly 0. The softmax still runs over all 49,408 tokens: the zero logits enter the denominator as one extra column
holding ``log(49408 - n)`` (``full_vocab_caption_loss``), which makes the loss exactly that of the full model the
run exports (tested against :meth:`CoCa.loss`). Shipped weights store only the non-zero rows (see
``checkpoints.save_native``), which is what keeps each checkpoint a few MB.

Determinism: example ``i`` is a pure function of the data seed, the order of epoch ``e`` is a permutation seeded by
(seed, e), initialisation is seeded, and the training state (model, optimizer, step, RNG, loss history) is written
atomically every ``save_every`` steps; ``--resume`` continues from it and ends with the same weights, bit for bit,
as an uninterrupted run on the same machine and thread count.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from coca_bench.fileio import atomic_write_bytes, atomic_write_text
from coca_bench.model.checkpoints import load_checkpoint, save_native
from coca_bench.model.coca import CoCa, contrastive_loss
from coca_bench.model.config import CocaConfig, get_preset
from coca_bench.model.preprocess import build_preprocess
from coca_bench.model.tokenizer import build_tokenizer
from coca_bench.training.data import TrainingData, TrainingDataConfig, TrainingExample

STATE_FILE, LOG_FILE, FINAL_DIR = "train_state.pt", "train_log.jsonl", "final"
STATE_FORMAT = "coca_bench_train_state"
OUTPUT_ONLY = ("early_step", "save_every")  # settings that change what is written, never the weights
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp of the learnable temperature
ADAM_BETAS, ADAM_EPS = (0.9, 0.98), 1e-6


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (with the torch version and the thread count)."""

    preset: str = "coca-demo"
    steps: int = 1600
    batch_size: int = 48
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    image_position_init_std: float | None = 0.7
    """Initial scale of the image encoder's positional embedding (the model's own init: width ** -0.5, 0.09 at width
    128). Small shapes on a plain background barely differ but in where they are; with the default scale the decoder
    had learnt positions no better than chance after 1,000 steps (teacher-forced "on the left" / "at the top": 33%),
    with 0.7 it reached 78% after 400. None keeps the model's init."""
    early_step: int | None = 25
    """Also export the weights after this step (the ``-early`` checkpoint); None: only the final weights."""
    save_every: int = 50
    threads: int = 2
    data: TrainingDataConfig = field(default_factory=TrainingDataConfig)

    def __post_init__(self) -> None:
        get_preset(self.preset)  # a clear error for an unknown preset
        if self.steps < 1 or self.batch_size < 2 or self.save_every < 1 or self.threads < 1:
            raise ValueError("TrainConfig: steps, save_every and threads must be >= 1 and batch_size >= 2.")
        if self.early_step is not None and not 1 <= self.early_step < self.steps:
            raise ValueError(f"TrainConfig: early_step must lie in [1, steps), got {self.early_step}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return cls(**{**data, "data": TrainingDataConfig(**data["data"])})


# ------------------------------------------------------------------------------------------------------ vocabulary
@dataclass(frozen=True)
class Vocabulary:
    """The full-vocabulary token ids the training text uses, in increasing order (padding, id 0, comes first)."""

    active: torch.Tensor
    full_size: int

    @classmethod
    def from_texts(cls, texts: Sequence[str], tokenizer: Any, full_size: int) -> Vocabulary:
        seen = {tokenizer.pad_id, tokenizer.sot_id, tokenizer.eot_id}
        for start in range(0, len(texts), 4096):
            seen.update(torch.unique(tokenizer(list(texts[start : start + 4096]))).tolist())
        active = torch.tensor(sorted(seen), dtype=torch.long)
        if int(active[0]) != 0 or tokenizer.pad_id != 0:
            raise ValueError("the compact vocabulary needs the padding id 0 (the CLIP BPE tokenizer's).")
        return cls(active, full_size)

    @property
    def size(self) -> int:
        return len(self.active)

    def compact(self, ids: torch.Tensor) -> torch.Tensor:
        """Full ids -> compact ids; an id outside the vocabulary is an error (the data defines the vocabulary)."""
        lookup = torch.full((self.full_size,), -1, dtype=torch.long)
        lookup[self.active] = torch.arange(self.size)
        out = lookup[ids]
        if bool((out < 0).any()):
            raise ValueError("a training text holds a token outside the training vocabulary.")
        return out


def compact_config(cfg: CocaConfig, vocab: Vocabulary) -> CocaConfig:
    """The training network's config: the same model with only the active vocabulary rows."""
    ids = vocab.active.tolist()
    text = dataclasses.replace(
        cfg.text, vocab_size=vocab.size, pad_id=0, sot_id=ids.index(cfg.text.sot_id), eot_id=ids.index(cfg.text.eot_id)
    )
    return dataclasses.replace(cfg, text=text)


def expand_network(compact: CoCa, vocab: Vocabulary, cfg: CocaConfig) -> CoCa:
    """The full-vocabulary CoCa the compact one stands for: inactive embedding rows and head columns are zeros."""
    with torch.device("meta"):
        full = CoCa(cfg)
    state = dict(compact.state_dict())
    embedding = state["text.token_embedding.weight"]
    state["text.token_embedding.weight"] = embedding.new_zeros(vocab.full_size, embedding.shape[1]).index_copy_(
        0, vocab.active, embedding
    )
    head = state["decoder.lm_head"]
    state["decoder.lm_head"] = head.new_zeros(head.shape[0], vocab.full_size).index_copy_(1, vocab.active, head)
    full.load_state_dict({k: v.detach().clone() for k, v in state.items()}, assign=True)
    return full.eval()


# ------------------------------------------------------------------------------------------------------------ loss
@dataclass
class Batch:
    images: torch.Tensor
    """[B_img + B_vid * T, 3, H, W]: the still images, then every clip's frames."""
    num_images: int
    num_frames: int
    tokens: torch.Tensor
    """[B, context] compact token ids, images' texts first, then clips'."""
    labels: torch.Tensor
    """[B, context - 1] the captioning targets: ``tokens[:, 1:]`` with prompt positions, and every position of texts
    that are no captioning targets, set to padding (ignored)."""
    contrastive: torch.Tensor
    """[B] bool: which texts take part in the contrastive loss."""


def full_vocab_caption_loss(logits: torch.Tensor, labels: torch.Tensor, inactive: int, pad_id: int) -> torch.Tensor:
    """Cross-entropy over the active logits plus ``inactive`` tokens whose logit is exactly 0, which is one more
    column holding their log-sum-exp, ``log(inactive)``; padding labels are ignored."""
    if inactive:
        extra = logits.new_full((*logits.shape[:-1], 1), math.log(inactive))
        logits = torch.cat([logits, extra], dim=-1)
    return F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=pad_id)


def joint_loss(network: CoCa, batch: Batch, inactive: int) -> dict[str, torch.Tensor]:
    """The paper's ``lambda_con * L_con + lambda_cap * L_cap`` over images and clips; a clip is the mean of its
    normalised frame embeddings and attends to its frames' decoder tokens averaged over time (the video tasks'
    pooling). For a batch of images with full-vocabulary ids and ``inactive=0`` this is :meth:`CoCa.loss`."""
    cfg = network.cfg
    latent, decoder_tokens = network.image_features(batch.images)
    latent = F.normalize(latent, dim=-1)
    n, t = batch.num_images, batch.num_frames
    clips = (len(batch.images) - n) // t
    if clips:
        video_latent = F.normalize(latent[n:].view(clips, t, -1).mean(dim=1), dim=-1)
        latent = torch.cat([latent[:n], video_latent])
        video_tokens = decoder_tokens[n:].view(clips, t, *decoder_tokens.shape[1:]).mean(dim=1)
        decoder_tokens = torch.cat([decoder_tokens[:n], video_tokens])
    text_latent, token_outputs = network.text(batch.tokens)
    # the decoder is causal: positions after the longest text change nothing, so they are not computed
    length = int((batch.tokens != cfg.text.pad_id).sum(dim=1).max())
    logits = network.decoder(token_outputs[:, : length - 1], decoder_tokens)
    caption = full_vocab_caption_loss(logits, batch.labels[:, : length - 1], inactive, cfg.text.pad_id)
    mask = batch.contrastive
    if int(mask.sum()) >= 2:
        contrastive = contrastive_loss(latent[mask], F.normalize(text_latent, dim=-1)[mask], network.logit_scale.exp())
    else:
        contrastive = caption.new_zeros(())
    total = cfg.contrastive_loss_weight * contrastive + cfg.caption_loss_weight * caption
    return {"contrastive_loss": contrastive, "caption_loss": caption, "loss": total}


def collate(examples: Sequence[TrainingExample], preprocess: Any, tokenizer: Any, vocab: Vocabulary) -> Batch:
    stills = [e for e in examples if len(e.frames) == 1]
    clips = [e for e in examples if len(e.frames) > 1]
    frame_counts = {len(e.frames) for e in clips}
    if len(frame_counts) > 1:
        raise ValueError(f"clips in one batch must have the same number of frames, got {sorted(frame_counts)}.")
    ordered = stills + clips
    pixels = torch.stack([preprocess(frame) for e in ordered for frame in e.frames])
    full_ids = tokenizer([e.text for e in ordered])
    labels = full_ids[:, 1:].clone()
    for row, example in enumerate(ordered):
        if not example.captioned:
            labels[row] = tokenizer.pad_id
        elif example.prompt is not None:
            prompt = tokenizer([example.prompt])[0]
            length = int((prompt != tokenizer.pad_id).sum()) - 2  # without the start and end tokens
            if not torch.equal(prompt[1 : length + 1], full_ids[row, 1 : length + 1]):
                raise ValueError(f"the prompt of {example.text!r} does not tokenize as a prefix of it.")
            labels[row, :length] = tokenizer.pad_id
    tokens = vocab.compact(full_ids)
    labels = vocab.compact(labels)
    contrastive = torch.tensor([e.contrastive for e in ordered])
    return Batch(pixels, len(stills), frame_counts.pop() if frame_counts else 1, tokens, labels, contrastive)


# -------------------------------------------------------------------------------------------------------- schedule
def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio * lr`` at the last step (``step`` counts from 0)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def batch_indices(config: TrainConfig, step: int) -> list[int]:
    """The example indices of ``step``: consecutive slices of a seeded permutation per epoch."""
    size, out = config.data.size, []
    position = step * config.batch_size
    while len(out) < config.batch_size:
        epoch, offset = divmod(position, size)
        order = np.random.default_rng(np.random.SeedSequence([config.seed, 7919, epoch])).permutation(size)
        take = order[offset : offset + config.batch_size - len(out)]
        out.extend(int(i) for i in take)
        position += len(take)
    return out


def _param_groups(network: CoCa, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on gains, biases, embeddings, queries and the temperature (CLIP's and open_clip's rule)."""
    decay, no_decay = [], []
    for name, param in network.named_parameters():
        skip = param.ndim < 2 or any(k in name for k in ("embedding", "query", "logit_scale", "cls_emb"))
        (no_decay if skip else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# --------------------------------------------------------------------------------------------------------- trainer
class Trainer:
    """One training run in ``output``: ``run()`` trains (or resumes) to ``config.steps`` and exports the weights."""

    def __init__(
        self, config: TrainConfig, output: Path, progress: bool = True, export_steps: Sequence[int] = ()
    ) -> None:
        """``export_steps``: also write these steps' weights to ``step-NNNNNN/`` (to pick an early step)."""
        self.config, self.output, self.progress = config, Path(output), progress
        self.export_steps = {*export_steps, *([config.early_step] if config.early_step else [])}
        self.full_cfg = get_preset(config.preset)
        self.tokenizer = build_tokenizer("clip_bpe", self.full_cfg.text.context_length)
        self.preprocess = build_preprocess(self.full_cfg.preprocess)
        self.data = TrainingData(config.data)
        self.vocab: Vocabulary | None = None
        self.network: CoCa | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.train_seconds = 0.0

    # -------------------------------------------------------------------------------------------- set-up / state
    def _build(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        torch.manual_seed(self.config.seed)
        self.network = CoCa(compact_config(self.full_cfg, vocab)).train()
        if self.config.image_position_init_std is not None:
            with torch.no_grad():  # a rescale, not a redraw: the seeded init stays the same otherwise
                position = self.network.visual.positional_embedding
                position.mul_(self.config.image_position_init_std * self.full_cfg.vision.width**0.5)
        self.optimizer = torch.optim.AdamW(
            _param_groups(self.network, self.config.weight_decay), lr=self.config.lr, betas=ADAM_BETAS, eps=ADAM_EPS
        )

    def start(self, resume: bool) -> None:
        state_path = self.output / STATE_FILE
        if resume and state_path.is_file():
            self._load_state(state_path)
            return
        if state_path.is_file():
            raise ValueError(f"{state_path} exists: pass --resume to continue that run, or choose another --output.")
        texts = list(self.data.texts())
        self._build(Vocabulary.from_texts(texts, self.tokenizer, self.full_cfg.text.vocab_size))

    def _load_state(self, path: Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"{path} is not a coca-bench training state.")
        stored, current = state["config"], self.config.to_dict()
        changed = sorted(k for k, v in stored.items() if k not in OUTPUT_ONLY and current.get(k) != v)
        if changed:
            raise ValueError(
                f"{path} was written with other settings ({', '.join(changed)}); resume with the same ones."
            )
        self._build(Vocabulary(state["vocab"], self.full_cfg.text.vocab_size))
        self.network.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.step, self.history, self.train_seconds = state["step"], state["history"], state["train_seconds"]

    def save_state(self) -> None:
        state = {
            "format": STATE_FORMAT,
            "config": self.config.to_dict(),
            "step": self.step,
            "model": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "vocab": self.vocab.active,
            "history": self.history,
            "train_seconds": self.train_seconds,
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(self.output / STATE_FILE, buffer.getvalue())
        atomic_write_text(self.output / LOG_FILE, "".join(json.dumps(row) + "\n" for row in self.history))

    # ------------------------------------------------------------------------------------------------- training
    def batch(self, step: int) -> Batch:
        examples = [self.data.example(i) for i in batch_indices(self.config, step)]
        return collate(examples, self.preprocess, self.tokenizer, self.vocab)

    def train_step(self) -> dict[str, float]:
        lr = learning_rate(self.config, self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        losses = joint_loss(self.network, self.batch(self.step), self.vocab.full_size - self.vocab.size)
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.config.grad_clip)
        self.optimizer.step()
        with torch.no_grad():
            self.network.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)
        self.step += 1
        return {
            "step": self.step,
            **{name: float(value.detach()) for name, value in losses.items()},
            "logit_scale": float(self.network.logit_scale.detach().exp()),
            "grad_norm": float(grad_norm),
            "lr": lr,
        }

    def train(self, until: int | None = None) -> None:
        """Train to ``until`` (default: the last step), saving the state every ``save_every`` steps and exporting
        the early weights when their step is reached."""
        from tqdm import tqdm

        until = self.config.steps if until is None else min(until, self.config.steps)
        bar = tqdm(total=self.config.steps, initial=self.step, desc="train", disable=not self.progress, file=sys.stderr)
        while self.step < until:
            started = time.perf_counter()
            row = self.train_step()
            self.train_seconds += time.perf_counter() - started
            row["train_seconds"] = round(self.train_seconds, 3)
            self.history.append(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}", con=f"{row['contrastive_loss']:.3f}",
                            cap=f"{row['caption_loss']:.3f}", T=f"{1 / row['logit_scale']:.3f}")  # fmt: skip
            if self.step in self.export_steps:
                self.export(self.output / step_dir(self.step))
            if self.step % self.config.save_every == 0 or self.step == until:
                self.save_state()
        bar.close()
        if self.step == self.config.steps and not (self.output / FINAL_DIR / "config.json").is_file():
            self.export(self.output / FINAL_DIR)

    def full_network(self) -> CoCa:
        return expand_network(self.network, self.vocab, self.full_cfg)

    def export(self, folder: Path) -> Path:
        return save_native(self.full_network(), folder)


def step_dir(step: int) -> str:
    return f"step-{step:06d}"


# ----------------------------------------------------------------------------------------------------- shipping
def parameter_counts(network: CoCa) -> dict[str, int]:
    """All parameters; those outside the two vocabulary matrices; the non-zero entries a sparse copy stores."""
    total = sum(p.numel() for p in network.parameters())
    vocab = network.text.token_embedding.weight.numel() + network.decoder.lm_head.numel()
    stored = sum(int(p.detach().ne(0).any(dim=-1).sum()) * p.shape[-1] if p.ndim == 2 else p.numel()
                 for p in (network.text.token_embedding.weight, network.decoder.lm_head.T))  # fmt: skip
    return {"total": total, "without_vocabulary": total - vocab, "stored": total - vocab + stored}


def ship(output: Path, folder: Path, name: str, command: str, config: TrainConfig) -> list[Path]:
    """Write ``folder/<name>`` (final weights) and ``folder/<name>-early`` (``config.early_step``, exported during
    training): fp16, zero vocabulary rows omitted, with a MODEL_CARD.md each."""
    state = torch.load(output / STATE_FILE, map_location="cpu", weights_only=True)
    if state["step"] != config.steps:
        raise ValueError(f"{output} has trained {state['step']} of {config.steps} steps; finish it (--resume) first.")
    targets = [(name, FINAL_DIR, config.steps)]
    if config.early_step is not None:
        targets.append((f"{name}-early", step_dir(config.early_step), config.early_step))
    written = []
    for target, source, steps in targets:
        if not (output / source / "config.json").is_file():
            raise ValueError(f"{output / source} is missing: a run exports a step given as --early-step or in "
                             "--export-steps when it reaches it.")  # fmt: skip
        network = load_checkpoint(str(output / source)).network
        destination = Path(folder) / target
        save_native(network, destination, dtype=torch.float16, omit_zero_rows=True)
        history = state["history"][steps - 1]
        card = model_card(target, network, config, steps, history, int(state["vocab"].numel()), command,
                          destination / "model.safetensors", name)  # fmt: skip
        atomic_write_text(destination / "MODEL_CARD.md", card)
        written.append(destination)
    return written


def model_card(name: str, network: CoCa, config: TrainConfig, steps: int, history: dict[str, float],
               vocab_size: int, command: str, weights: Path, family: str) -> str:  # fmt: skip
    counts = parameter_counts(network)
    cfg = network.cfg
    size_mb = weights.stat().st_size / 1e6
    role = (
        f"the weights after step {steps} of the run that trained `{family}`, the early baseline that `{family}` is "
        "compared against"
        if steps < config.steps
        else f"the final weights of the run (step {steps}); `{family}-early` holds step {config.early_step}"
    )
    data = config.data
    lines = [
        f"# {name}",
        "",
        f"A small CoCa trained from scratch by `coca-bench train` on generated scenes: {role}.",
        "",
        "**It checks the benchmark pipeline; it is not a model of natural images.** Its scores on the bundled mini "
        "datasets say that every task's pipeline (encoders, poolers, prompts, decoding, metrics) works end to end; "
        "they cannot be compared with any paper number.",
        "",
        "## Model",
        "",
        f"- Preset `{config.preset}` (`coca_bench.model.PRESETS`): {cfg.vision.image_size}x{cfg.vision.image_size} "
        f"pixels in {cfg.vision.patch_size}x{cfg.vision.patch_size} patches, ViT width {cfg.vision.width} x "
        f"{cfg.vision.layers} layers, {cfg.vision.pooler} attentional poolers ({cfg.vision.pooler_queries} generative "
        f"queries); text width {cfg.text.width}, {cfg.text.unimodal_layers} unimodal + {cfg.text.multimodal_layers} "
        f"multimodal layers ({cfg.text.multimodal_layout} layout), context {cfg.text.context_length}; embedding "
        f"{cfg.embed_dim}; CLIP BPE tokenizer ({cfg.text.vocab_size:,} tokens).",
        f"- Parameters: {counts['total']:,} in all, of which {counts['without_vocabulary']:,} outside the two "
        f"vocabulary matrices (token embedding and vocabulary head, {cfg.text.vocab_size:,} x {cfg.text.width} each).",
        f"- Vocabulary: the training text holds {vocab_size} of the {cfg.text.vocab_size:,} BPE tokens. The other "
        "tokens' embedding rows and vocabulary-head columns are exactly zero, so their logit is 0; the training "
        "softmax ran over all tokens. Any text still tokenizes and encodes; unseen tokens embed as zeros.",
        f"- Storage: `model.safetensors` ({size_mb:.1f} MB) holds fp16 weights, and of the vocabulary matrices only "
        f"the non-zero rows ({counts['stored']:,} stored values). Loading restores the zero rows and upcasts to fp32, "
        "so the network evaluated is exactly these fp16 values in fp32. `config.json` is the native config.",
        "",
        "## Training",
        "",
        f"- Objective: the paper's `{cfg.contrastive_loss_weight:g} * contrastive + {cfg.caption_loss_weight:g} * "
        f"captioning` loss with a learnable temperature (initial {math.exp(-cfg.init_logit_scale):.2g}, clamped at "
        f"1/{math.exp(MAX_LOGIT_SCALE):.0f}); AdamW (betas {ADAM_BETAS[0]} / {ADAM_BETAS[1]}, weight decay "
        f"{config.weight_decay} on matrices), "
        f"learning rate {config.lr} with {config.warmup_steps} warm-up steps and cosine decay to "
        f"{config.min_lr_ratio:g}x, gradient clipping {config.grad_clip}, batch {config.batch_size}; image "
        f"positional embedding initialised at std {config.image_position_init_std} (see `TrainConfig`).",
        f"- Steps: {steps} of {config.steps}, {steps * config.batch_size:,} examples seen (one epoch is "
        f"{data.size:,}). Loss at this step: {history['loss']:.3f} (contrastive {history['contrastive_loss']:.3f}, "
        f"captioning {history['caption_loss']:.3f}), temperature {1 / history['logit_scale']:.4f}.",
        f"- Data: `{TrainingData.__module__}`, seed {data.seed}; the evaluation mini datasets use seed 0 and "
        "other random streams, so no training image is an evaluation image. Shapes (circle, square, triangle, star; "
        f"hexagon, diamond, cross {data.novel_share:.0%} of the time) in six colours, rendered at 128 px, through "
        f"JPEG and the model's preprocessing. Mix: {data.caption_weight:.0%} captioned scenes of one or two shapes; "
        f'{data.label_weight:.0%} class names in the zero-shot tasks\' prompts ("a photo of a red circle."), '
        f"contrastive loss only; {data.vqa_weight:.0%} `question: Q answer: A` text, captioning loss on the answer "
        f"only; {data.video_weight:.0%} clips of a moving shape ({data.num_frames} frames, mean-pooled as the video "
        "tasks pool them) with an MSR-VTT style caption or a Kinetics-style motion prompt (contrastive only).",
        f"- Seed {config.seed} (initialisation and example order). Deterministic on a CPU for a given torch version "
        "and thread count; a resumed run ends with the same weights as an uninterrupted one.",
        f"- Wall time: {history['train_seconds'] / 60:.1f} min of training to this step, {config.threads} CPU "
        f"threads (torch {torch.__version__}), on a machine shared with other jobs.",
        "",
        "## Reproduce",
        "",
        "```bash",
        command,
        "```",
        "",
        f"The run writes both `{family}` and `{family}-early`. Evaluate with "
        f"`python run_suite.py --tasks all --checkpoint {name}`.",
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------ command
def build_parser() -> argparse.ArgumentParser:
    defaults, data = TrainConfig(), TrainingDataConfig()
    parser = argparse.ArgumentParser(
        prog="coca-bench train",
        description="Train a small CoCa from scratch on generated scenes (contrastive + captioning), resumable.",
    )
    parser.add_argument("--output", type=Path, default=Path("runs/demo"), help="run folder (default runs/demo)")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's last saved state")
    parser.add_argument("--preset", default=defaults.preset, help=f"model preset (default {defaults.preset})")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--min-lr-ratio", type=float, default=defaults.min_lr_ratio)
    parser.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--grad-clip", type=float, default=defaults.grad_clip)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="initialisation and example order")
    parser.add_argument("--image-position-init-std", type=float, default=defaults.image_position_init_std,
                        help="initial scale of the image positional embedding (default 0.7)")  # fmt: skip
    parser.add_argument("--early-step", type=int, default=defaults.early_step, help="also export this step's weights")
    parser.add_argument("--save-every", type=int, default=defaults.save_every, help="steps between saved states")
    parser.add_argument("--export-steps", default="", metavar="N,N,...",
                        help="also export these steps' weights to step-NNNNNN/ (to choose an early step)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=defaults.threads, help="torch CPU threads (default 2)")
    parser.add_argument("--data-seed", type=int, default=data.seed, help="training data seed (evaluation data: 0)")
    parser.add_argument("--data-size", type=int, default=data.size, help="examples in one epoch")
    parser.add_argument("--ship", type=Path, default=None, metavar="DIR",
                        help="at the end, write DIR/NAME and DIR/NAME-early: fp16 weights, model cards")  # fmt: skip
    parser.add_argument("--name", default="demo", help="shipped checkpoint name (default demo)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        preset=args.preset, steps=args.steps, batch_size=args.batch_size, lr=args.lr, min_lr_ratio=args.min_lr_ratio,
        warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, grad_clip=args.grad_clip, seed=args.seed,
        image_position_init_std=args.image_position_init_std,
        early_step=args.early_step, save_every=args.save_every, threads=args.threads,
        data=dataclasses.replace(TrainingDataConfig(), seed=args.data_seed, size=args.data_size),
    )  # fmt: skip


def reproduce_command(argv: Sequence[str]) -> str:
    """The command line as given, without ``--resume`` (a resumed run ends where an uninterrupted one does)."""
    return shlex.join(["python", "run_suite.py", "train", *(a for a in argv if a != "--resume")])


def main(argv: Sequence[str] | None = None) -> int:
    """``coca-bench train``. Run through the CLI, idle OpenMP threads sleep instead of spinning
    (``OMP_WAIT_POLICY=PASSIVE``, set before torch loads: on a CPU shared with other jobs, spinning threads made each
    step 5x slower, 5.5 s against 1.0 s with 2 threads); it changes no result, and an explicit setting wins."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    torch.set_num_threads(config.threads)
    export_steps = [int(x) for x in args.export_steps.split(",") if x.strip()]
    trainer = Trainer(config, args.output, progress=args.progress, export_steps=export_steps)
    trainer.start(resume=args.resume)
    if trainer.step:
        print(f"resuming {args.output} at step {trainer.step} of {config.steps}", file=sys.stderr)
    trainer.train()
    print(f"trained {config.steps} steps in {trainer.train_seconds / 60:.1f} min; weights in {args.output / FINAL_DIR}")
    if args.ship is not None:
        for folder in ship(args.output, args.ship, args.name, reproduce_command(argv), config):
            print(f"shipped {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
