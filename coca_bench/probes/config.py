"""Probe settings as plain data, importable without torch (task parameters are built from them at registration)."""

from __future__ import annotations

from dataclasses import dataclass

from coca_bench.errors import SettingValueError


@dataclass(frozen=True)
class AttentiveProbeConfig:
    """Training settings of the attentive probe.

    The paper's frozen-encoder protocol (CoCa App. A, Table 9): only the pooler and head train, pooler LR 5e-4,
    cosine decay to 0, softmax cross-entropy, gradient clipping at 1.0, Adafactor with decoupled weight decay and
    an EMA of 0.9999. Images (ImageNet): label smoothing 0.2, weight decay 0.01, batch 512, 200k steps, RandAugment.
    Kinetics-400: label smoothing 0.1, weight decay 0, batch 128, 120k steps, 1k warm-up steps; Moments-in-Time as
    Kinetics with no label smoothing.

    The defaults keep the paper's image settings where they carry over (LR, label smoothing, weight decay, clipping,
    cosine schedule) and deviate where the bundled data is tiny and the features are cached: training runs for a
    number of epochs rather than 200k steps, batch 64 rather than 512 (a handful of examples per class would
    otherwise give a few steps in all), AdamW (torch's standard) rather than Adafactor, no EMA (it averages over
    ~10k steps, more than a small run takes), and no RandAugment (the tokens are precomputed). For video set
    ``label_smoothing=0.1, weight_decay=0.0, warmup_steps=...``.
    """

    epochs: int = 50
    lr: float = 5e-4
    weight_decay: float = 0.01
    batch_size: int = 64
    label_smoothing: float = 0.2
    warmup_steps: int = 0
    num_heads: int = 8
    grad_clip_norm: float = 1.0  # 0 disables clipping
    min_steps: int = 0
    """Train at least this many optimizer steps, running more epochs where needed: a split smaller than a batch gives
    one step per epoch (the bundled mini Kinetics), while a real split reaches its steps through ``epochs`` alone."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.num_heads < 1 or self.min_steps < 0:
            raise SettingValueError("epochs, batch_size and num_heads must be at least 1, and min_steps at least 0.")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_steps < 0 or self.grad_clip_norm < 0:
            raise SettingValueError("lr must be positive and weight_decay, warmup_steps, grad_clip_norm non-negative.")
        if not 0 <= self.label_smoothing < 1:
            raise SettingValueError(f"label_smoothing must lie in [0, 1); got {self.label_smoothing}.")


__all__ = ["AttentiveProbeConfig"]
