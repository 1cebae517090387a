"""Transformer building blocks shared by the image encoder, the text layers and the poolers.

Attention runs through ``F.scaled_dot_product_attention`` with fused projections. Self-attention can append to a
:class:`KVCache`; cross-attention takes keys and values computed once per image (:meth:`CrossAttention.image_kv`),
which is what makes cached captioning cheap.

:func:`pack_for_onednn` turns a bf16 copy of layers into oneDNN-prepacked ones (:class:`PackedLinear`) for bf16
decoding on CPUs: there, plain bf16 ``F.linear`` with 1 to 8 rows is no faster than fp32, while prepacked weights run
on AMX / AVX-512-BF16 at 2-3x fp32's speed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class KVCache:
    """Keys and values of one self-attention layer, preallocated to ``max_len`` positions."""

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self.length = 0
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, h, t, d = k.shape
        if self.k is None:
            self.k = k.new_empty(b, h, self.max_len, d)
            self.v = v.new_empty(b, h, self.max_len, d)
        end = self.length + t
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions; cannot append up to position {end}.")
        self.k[:, :, self.length : end] = k
        self.v[:, :, self.length : end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]

    def select(self, index: torch.Tensor) -> None:
        """Keep (and reorder) batch rows: beam reordering and dropping finished sequences."""
        if self.k is not None:
            self.k = self.k.index_select(0, index)
            self.v = self.v.index_select(0, index)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, t, _ = x.shape
    return x.view(b, t, heads, -1).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        """``mask``: boolean, True where a query may attend a key, broadcastable to [B, H, Tq, Tk]."""
        q, k, v = (_split_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))
        if cache is not None:
            k, v = cache.append(k, v)
        return self.out(_merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))


class CrossAttention(nn.Module):
    """Queries from one sequence, keys and values from another (image tokens, or a pooler's input)."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def image_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(context).chunk(2, dim=-1)
        return _split_heads(k, self.heads), _split_heads(v, self.heads)

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``kv`` may hold one entry per group of rows (one image for all its beams): each query attends on its
        own, so the group's queries are folded into the query length instead of copying keys and values per row."""
        q = _split_heads(self.q(x), self.heads)
        k, v = kv
        rows, heads, length, dim = q.shape
        if k.shape[0] == rows:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            group = rows // k.shape[0]
            q = q.view(k.shape[0], group, heads, length, dim).transpose(1, 2).reshape(k.shape[0], heads, -1, dim)
            out = F.scaled_dot_product_attention(q, k, v)
            out = out.view(k.shape[0], heads, group, length, dim).transpose(1, 2).reshape(rows, heads, length, dim)
        return self.out(_merge_heads(out))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, hidden)
        self.proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-norm residual self-attention + MLP (image encoder layers, unimodal text layers, decoder self-attention)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask, cache)
        return x + self.mlp(self.ln_2(x))


class SelfAttentionBlock(nn.Module):
    """Pre-norm residual self-attention without an MLP: the start of a paper-layout multimodal layer, whose one MLP
    comes after the cross-attention (in :class:`CrossBlock`)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        return x + self.attn(self.ln_1(x), mask, cache)


class CrossBlock(nn.Module):
    """Pre-norm residual cross-attention to the image tokens + MLP (the multimodal half of a decoder layer)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.ln_1_kv = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim)

    def image_kv(self, image_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.attn.image_kv(self.ln_1_kv(image_tokens))

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), kv)
        return x + self.mlp(self.ln_2(x))


class AttentionalPooler(nn.Module):
    """One multi-head attention layer with ``n_queries`` learned queries over the input tokens (CoCa's poolers)."""

    def __init__(self, dim: int, context_dim: int, heads: int, n_queries: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(n_queries, dim) * dim**-0.5)
        self.ln_q = nn.LayerNorm(dim)
        self.ln_k = nn.LayerNorm(context_dim)
        self.attn = CrossAttention(dim, heads, kv_dim=context_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        q = self.ln_q(self.query).unsqueeze(0).expand(tokens.shape[0], -1, -1)
        return self.attn(q, self.attn.image_kv(self.ln_k(tokens)))


def onednn_bf16_available(device: torch.device) -> bool:
    """Whether prepacked oneDNN bf16 linears can run here: a CPU tensor, and a torch build and CPU with bf16 support.

    Can run, not run fast: oneDNN also runs bf16 by emulation on any AVX-512 CPU (its check is ``avx512_core``), where
    it is slower than fp32. Whether this CPU has native bf16 is :func:`coca_bench.hardware.detect`'s answer."""
    ops = torch.ops.mkldnn
    return (
        device.type == "cpu"
        and torch.backends.mkldnn.is_available()
        and hasattr(ops, "_linear_pointwise")
        and hasattr(ops, "_reorder_linear_weight")
        and bool(ops._is_mkldnn_bf16_supported())
    )


class PackedLinear(nn.Module):
    """A frozen bf16 linear layer whose weight is reordered once into oneDNN's blocked layout; optionally fused with
    a GELU. Inference only: the packed weight is an opaque tensor, not a parameter (no state dict, no copy)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, activation: str = "none") -> None:
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(weight.detach().bfloat16().contiguous())
        self.bias = None if bias is None else bias.detach().bfloat16()
        self.activation = activation
        self.algorithm = "none" if activation == "gelu" else ""  # exact (erf) GELU, as F.gelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a contiguous input: oneDNN's result is then the same for a view and its copy
        return torch.ops.mkldnn._linear_pointwise(
            x.contiguous(), self.packed_weight, self.bias, self.activation, [], self.algorithm
        )

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class PackedMLP(nn.Module):
    """:class:`MLP` with prepacked weights and the GELU fused into the first product (one op fewer per layer)."""

    def __init__(self, mlp: MLP) -> None:
        super().__init__()
        self.fc = PackedLinear(mlp.fc.weight, mlp.fc.bias, activation="gelu")
        self.proj = PackedLinear(mlp.proj.weight, mlp.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.fc(x))


def pack_for_onednn(module: nn.Module) -> nn.Module:
    """Replace, in place, every :class:`MLP` and ``nn.Linear`` under ``module`` by its prepacked bf16 form."""
    for name, child in list(module.named_children()):
        if isinstance(child, MLP):
            setattr(module, name, PackedMLP(child))
        elif isinstance(child, nn.Linear):
            setattr(module, name, PackedLinear(child.weight, child.bias))
        else:
            pack_for_onednn(child)
    return module
