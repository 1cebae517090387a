"""CoCa's frozen-encoder probe: a new single-query attentional pooler over the encoder's tokens + a softmax head.

The pooler is CoCa's own :class:`~coca_bench.model.layers.AttentionalPooler` with one query (LayerNorm on the query
and on the tokens, multi-head cross-attention whose keys and values are the tokens), freshly initialised; a linear
layer maps the pooled vector to class logits. The same function serves images (tokens = patches) and video (tokens
= patches of every frame, spatial x temporal), as in the paper's Tables 2 and 9.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coca_bench.model.layers import AttentionalPooler
from coca_bench.probes.config import AttentiveProbeConfig


class AttentivePoolingClassifier(nn.Module):
    """A one-query attentional pooler over ``[B, T, D]`` tokens, then a linear layer to class logits."""

    def __init__(self, dim: int, num_classes: int, num_heads: int) -> None:
        super().__init__()
        self.pooler = AttentionalPooler(dim, dim, num_heads, n_queries=1)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The pooler's attention, computed in the token width instead of projecting every token.

        With one query, a head's score for token i is q_h . (W_k,h LN(x_i) + b_k,h); LN(x) = g * xhat + b, and
        every term without xhat_i is the same for all tokens, so it cancels in the softmax: the scores are
        xhat_i . u_h with u_h = g * (W_k,h^T q_h). The values are affine in the tokens and the weights sum to 1, so
        the head's output is W_v,h (g * sum_i a_i xhat_i + b) + b_v,h. Exactly :meth:`reference_forward`'s function
        (to float rounding: ``tests/test_probes.py``), without the [tokens x width x width] key and value projections
        that dominated training on thousands of tokens per video.
        """
        pooler, attention = self.pooler, self.pooler.attn
        heads, width = attention.heads, attention.q.out_features
        head_dim, context = width // heads, tokens.shape[-1]
        normed = F.layer_norm(tokens, (context,), eps=pooler.ln_k.eps)  # xhat: LayerNorm without its affine
        gain, bias = pooler.ln_k.weight, pooler.ln_k.bias
        query = attention.q(pooler.ln_q(pooler.query)).view(heads, head_dim)  # the one query, per head
        key_weight, value_weight = attention.kv.weight.view(2, heads, head_dim, context)
        directions = torch.einsum("hd,hdc->hc", query, key_weight) * gain  # u_h: [heads, context]
        weights = (normed @ directions.T * head_dim**-0.5).softmax(dim=1)  # [batch, tokens, heads]
        mixed = torch.einsum("bth,btc->bhc", weights, normed) * gain + bias  # [batch, heads, context]
        values = torch.einsum("bhc,hdc->bhd", mixed, value_weight) + attention.kv.bias[width:].view(heads, head_dim)
        return self.head(attention.out(values.reshape(tokens.shape[0], width)))

    def reference_forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """CoCa's :class:`AttentionalPooler` as it is written (every token projected to keys and values)."""
        return self.head(self.pooler(tokens)[:, 0])


@dataclass
class AttentiveProbe:
    """A trained probe; ``train_loss`` is the mean training loss of each epoch, ``train_size`` the examples it was
    trained on (after any unreadable one was skipped) and ``steps`` its optimizer steps (``min_steps`` applied)."""

    model: AttentivePoolingClassifier
    config: AttentiveProbeConfig
    num_classes: int
    train_loss: list[float] = field(default_factory=list)
    train_size: int = 0
    steps: int = 0

    def logits(self, tokens: Any, batch_size: int = 256, device: str | torch.device = "cpu") -> np.ndarray:
        """``[N, num_classes]`` float32 logits for ``[N, T, D]`` tokens (numpy or torch, any float dtype)."""
        tokens = _check_tokens(tokens, self.model.head.in_features)
        self.model.to(device).eval()
        out = []
        with torch.inference_mode():
            for start in range(0, tokens.shape[0], batch_size):
                batch = _batch(tokens, torch.arange(start, min(start + batch_size, tokens.shape[0])), device)
                out.append(self.model(batch).float().cpu())
        return torch.cat(out).numpy()


def _check_tokens(tokens: Any, dim: int | None = None) -> Any:
    if not isinstance(tokens, torch.Tensor):
        tokens = np.asarray(tokens)
    if tokens.ndim != 3 or tokens.shape[0] == 0 or tokens.shape[1] == 0:
        raise ValueError(f"tokens must be a non-empty [samples, tokens, dim] array; got shape {tuple(tokens.shape)}.")
    if dim is not None and tokens.shape[2] != dim:
        raise ValueError(f"tokens must have width {dim} like the training tokens; got {tokens.shape[2]}.")
    return tokens


def _batch(tokens: Any, index: torch.Tensor, device: str | torch.device) -> torch.Tensor:
    """Rows ``index`` as float32 on ``device``; the full array stays in its storage dtype (fp16 halves its memory)."""
    if isinstance(tokens, torch.Tensor):
        return tokens[index].to(device=device, dtype=torch.float32)
    return torch.from_numpy(np.asarray(tokens[index.numpy()], dtype=np.float32)).to(device)


def _learning_rate(step: int, total: int, config: AttentiveProbeConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``total``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * progress)) * config.lr


def train_attentive_probe(
    train_tokens: Any,
    train_labels: Any,
    num_classes: int,
    config: AttentiveProbeConfig = AttentiveProbeConfig(),
    *,
    device: str | torch.device = "cpu",
) -> AttentiveProbe:
    """Train a fresh pooler + head on frozen ``[N, T, D]`` tokens (numpy or torch, fp16 storage is fine).

    Deterministic on a CPU for ``config.seed``: initialisation draws from a forked, seeded global generator (the
    caller's RNG state is left as it was) and the epoch shuffles from a local ``torch.Generator``. Weight decay
    applies to matrices only (not to biases and LayerNorm gains).
    """
    tokens = _check_tokens(train_tokens)
    labels = torch.as_tensor(np.asarray(train_labels))
    n, _, dim = tokens.shape
    if labels.shape != (n,) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"train_labels must be {n} integer class indices; got shape {tuple(labels.shape)}.")
    labels = labels.long()
    if num_classes < 2 or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"train_labels must lie in [0, num_classes) with num_classes >= 2; got {num_classes} classes.")
    if dim % config.num_heads:
        raise ValueError(f"num_heads ({config.num_heads}) must divide the token width ({dim}).")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = AttentivePoolingClassifier(dim, num_classes, config.num_heads).to(device)
    generator = torch.Generator().manual_seed(config.seed)
    matrices = [p for p in model.parameters() if p.ndim >= 2]
    others = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": matrices, "weight_decay": config.weight_decay}, {"params": others, "weight_decay": 0.0}],
        lr=config.lr,
    )
    steps_per_epoch = math.ceil(n / config.batch_size)
    epochs = max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))
    total = epochs * steps_per_epoch
    model.train()
    epoch_losses: list[float] = []
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        loss_sum = 0.0
        for i, start in enumerate(range(0, n, config.batch_size)):
            index = order[start : start + config.batch_size]
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(epoch * steps_per_epoch + i, total, config)
            logits = model(_batch(tokens, index, device))
            loss = F.cross_entropy(logits, labels[index].to(device), label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip_norm:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
            optimizer.step()
            loss_sum += loss.item() * index.numel()
        epoch_losses.append(loss_sum / n)
    model.eval()
    return AttentiveProbe(model, config, num_classes, epoch_losses, train_size=n, steps=total)
