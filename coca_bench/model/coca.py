"""The CoCa network: image encoder with attentional poolers, unimodal text layers, multimodal decoder, losses.

Mirrors the paper (Yu et al. 2022) and loads open_clip's released weights exactly (see ``checkpoints.py`` for the
key mapping). Decoding goes through :class:`DecodingSession`, which owns the key/value caches so that the search
strategies in ``generation.py`` never touch model internals.
"""

from __future__ import annotations

import copy
import weakref
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import CocaConfig
from .layers import (
    AttentionalPooler,
    Block,
    CrossBlock,
    KVCache,
    PackedLinear,
    SelfAttentionBlock,
    onednn_bf16_available,
    pack_for_onednn,
)


class ImageEncoder(nn.Module):
    def __init__(self, cfg: CocaConfig) -> None:
        super().__init__()
        v, width = cfg.vision, cfg.vision.width
        pool_dim = cfg.text.width  # the decoder cross-attends to the pooler outputs
        grid = v.image_size // v.patch_size
        self.pooler_kind = v.pooler
        self.patch_embed = nn.Conv2d(3, width, kernel_size=v.patch_size, stride=v.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width) * width**-0.5)
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, width) * width**-0.5)
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList(Block(width, v.heads, v.mlp_dim) for _ in range(v.layers))
        self.gen_pooler = AttentionalPooler(pool_dim, width, v.pooler_heads, v.pooler_queries)
        if v.pooler == "open_clip":
            self.con_pooler = None
            self.ln_post = nn.LayerNorm(pool_dim)
        else:
            self.con_pooler = AttentionalPooler(
                pool_dim, pool_dim if v.pooler == "cascade" else width, v.pooler_heads, 1
            )
            self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(pool_dim, cfg.embed_dim) * pool_dim**-0.5)

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """Encoder output before pooling: [B, 1 + patches, width] (class token first)."""
        x = self.patch_embed(pixels).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        for block in self.blocks:
            x = block(x)
        return x

    def pool(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(contrastive embedding [B, E] before normalisation, tokens the decoder attends to [B, M, D])."""
        if self.con_pooler is None:  # open_clip: the first of the n_query outputs is the contrastive one
            x = self.ln_post(self.gen_pooler(tokens))
            pooled, decoder_tokens = x[:, 0], x[:, 1:]
        else:
            x = self.ln_post(tokens)
            decoder_tokens = self.gen_pooler(x)
            pooled = self.con_pooler(decoder_tokens if self.pooler_kind == "cascade" else x)[:, 0]
        return pooled @ self.proj, decoder_tokens


def causal_mask(length: int, device: torch.device) -> torch.Tensor:
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


class TextEncoder(nn.Module):
    """The unimodal text layers: causal self-attention only; a learned [CLS] appended last gives the text embedding."""

    def __init__(self, cfg: CocaConfig) -> None:
        super().__init__()
        t = cfg.text
        self.pad_id, self.legacy_cls_mask = t.pad_id, t.legacy_cls_mask
        self.token_embedding = nn.Embedding(t.vocab_size, t.width)
        self.cls_emb = nn.Parameter(torch.randn(t.width) * 0.01)
        self.positional_embedding = nn.Parameter(torch.randn(t.context_length + 1, t.width) * 0.01)
        self.blocks = nn.ModuleList(Block(t.width, t.heads, t.mlp_dim) for _ in range(t.unimodal_layers))
        self.ln_final = nn.LayerNorm(t.width)
        self.text_projection = nn.Parameter(torch.randn(t.width, cfg.embed_dim) * t.width**-0.5)

    def key_valid(self, tokens: torch.Tensor) -> torch.Tensor:
        """Which token positions may be attended to: [B, L] bool.

        With the legacy mask (released open_clip weights) the validity vector is shifted right by one: position 0
        is always valid and position p is valid when token p-1 is not padding.
        """
        valid = tokens != self.pad_id
        if self.legacy_cls_mask:
            return torch.cat([torch.ones_like(valid[:, :1]), valid[:, :-1]], dim=1)
        return valid

    def cls_key_valid(self, tokens: torch.Tensor) -> torch.Tensor:
        """Whether the [CLS] position (appended after all L tokens) may be attended to: [B, 1] bool.

        open_clip's legacy mask gives the CLS key the validity of token L-1, so a prompt shorter than the context
        does not let its CLS attend to itself; the correct mask always does.
        """
        if self.legacy_cls_mask:
            return tokens[:, -1:] != self.pad_id
        return torch.ones_like(tokens[:, :1], dtype=torch.bool)

    @staticmethod
    def kept_length(keys: torch.Tensor) -> int:
        """The shortest prefix of token positions that holds every key any row may attend to ([B, L] validity).

        A position no query may attend to cannot change the CLS output (attention is causal and the position is
        masked as a key), so everything after the last attendable position can be left out of the computation.
        With the correct mask that is the last real token of the longest row; with the legacy mask, whose
        validity is shifted by one, the first pad after it, which the CLS does attend to.
        """
        attendable = keys.any(dim=0)
        positions = torch.arange(1, keys.shape[1] + 1, device=keys.device)
        return int((positions * attendable).max()) if keys.shape[1] else 0

    def forward(self, tokens: torch.Tensor, trim_padding: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(text embedding [B, E] before normalisation, token outputs [B, K, W] that feed the decoder).

        ``trim_padding=False``: K = L, open_clip's computation over the whole input. ``trim_padding=True`` computes
        only the first K = :meth:`kept_length` positions (about 10 of 76 for a zero-shot prompt): the embedding is
        the same up to float rounding and so are the K token outputs; the [CLS] keeps the positional embedding of
        position L and the key validity it has over the whole input.
        """
        b, length = tokens.shape
        keys = self.key_valid(tokens)
        keep = self.kept_length(keys) if trim_padding else length
        x = self.token_embedding(tokens[:, :keep])
        x = x + self.positional_embedding[:keep].to(x.dtype)
        cls = self.cls_emb.to(x.dtype) + self.positional_embedding[length].to(x.dtype)
        x = torch.cat([x, cls.expand(b, 1, -1)], dim=1)
        keys = torch.cat([keys[:, :keep], self.cls_key_valid(tokens)], dim=1)
        mask = causal_mask(keep + 1, tokens.device)[None, None] & keys[:, None, None, :]
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_final(x[:, -1]) @ self.text_projection, x[:, :-1]


class MultimodalDecoder(nn.Module):
    """Causal self-attention plus cross-attention to the image tokens in every layer, then the vocabulary head.

    Layer ``i`` is ``self_blocks[i]`` then ``cross_blocks[i]``. The ``open_clip`` layout gives the self-attention its
    own MLP (a :class:`Block`), as open_clip's checkpoints need; the ``paper`` layout has none
    (:class:`SelfAttentionBlock`), leaving the cross block's MLP as the layer's only one.
    """

    def __init__(self, cfg: CocaConfig) -> None:
        super().__init__()
        t = cfg.text
        if t.multimodal_layout == "paper":
            self_blocks = [SelfAttentionBlock(t.width, t.heads) for _ in range(t.multimodal_layers)]
        else:
            self_blocks = [Block(t.width, t.heads, t.mlp_dim) for _ in range(t.multimodal_layers)]
        self.self_blocks = nn.ModuleList(self_blocks)
        self.cross_blocks = nn.ModuleList(CrossBlock(t.width, t.heads, t.mlp_dim) for _ in range(t.multimodal_layers))
        self.ln_final = nn.LayerNorm(t.width)
        self.lm_head = nn.Parameter(torch.randn(t.width, t.vocab_size) * t.width**-0.5)

    def image_kv(self, image_tokens: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [block.image_kv(image_tokens) for block in self.cross_blocks]

    def features(self, text_tokens: torch.Tensor, image_kv: list, caches: list[KVCache] | None = None) -> torch.Tensor:
        """Multimodal features [B, L, W] after the final norm (what probes and VQA heads read)."""
        mask = None if caches is not None else causal_mask(text_tokens.shape[1], text_tokens.device)
        x = text_tokens
        for i, (self_block, cross_block) in enumerate(zip(self.self_blocks, self.cross_blocks)):
            x = self_block(x, mask, caches[i] if caches is not None else None)
            x = cross_block(x, image_kv[i])
        return self.ln_final(x)

    def forward(self, text_tokens: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        return self.features(text_tokens, self.image_kv(image_tokens)) @ self.lm_head


class CoCa(nn.Module):
    def __init__(self, cfg: CocaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.visual = ImageEncoder(cfg)
        self.text = TextEncoder(cfg)
        self.decoder = MultimodalDecoder(cfg)
        self.logit_scale = nn.Parameter(torch.tensor(cfg.init_logit_scale))

    def image_features(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.visual.pool(self.visual.tokens(pixels))

    def encode_image(self, pixels: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        latent = self.image_features(pixels)[0]
        return F.normalize(latent, dim=-1) if normalize else latent

    def encode_text(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Computed only up to the longest prompt's last attendable position (:meth:`TextEncoder.forward`): padding
        changes nothing but the cost, and a zero-shot prompt is ~10 of the context's 76 tokens."""
        latent = self.text(tokens, trim_padding=True)[0]
        return F.normalize(latent, dim=-1) if normalize else latent

    def forward(self, pixels: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Teacher-forced pass: position i predicts token i + 1."""
        image_latent, image_tokens = self.image_features(pixels)
        text_latent, token_outputs = self.text(tokens)
        logits = self.decoder(token_outputs[:, :-1], image_tokens)
        return {
            "image_features": F.normalize(image_latent, dim=-1),
            "text_features": F.normalize(text_latent, dim=-1),
            "logits": logits,
            "labels": tokens[:, 1:],
            "logit_scale": self.logit_scale.exp(),
        }

    def loss(self, pixels: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """lambda_con * L_con + lambda_cap * L_cap (paper: 1.0 and 2.0); padding is ignored in L_cap."""
        out = self(pixels, tokens)
        contrastive = contrastive_loss(out["image_features"], out["text_features"], out["logit_scale"])
        caption = F.cross_entropy(out["logits"].transpose(1, 2), out["labels"], ignore_index=self.cfg.text.pad_id)
        total = self.cfg.contrastive_loss_weight * contrastive + self.cfg.caption_loss_weight * caption
        return {"contrastive_loss": contrastive, "caption_loss": caption, "loss": total}

    def start_decoding(
        self,
        image_tokens: torch.Tensor,
        max_len: int,
        use_cache: bool = True,
        rows_per_image: int = 1,
        dtype: torch.dtype = torch.float32,
    ) -> DecodingSession:
        return DecodingSession(self, image_tokens, max_len, use_cache, rows_per_image, dtype)

    def decoding_weights(self, dtype: torch.dtype = torch.float32) -> DecodingWeights:
        """The text layers, decoder and vocabulary head a :class:`DecodingSession` runs: this model's own for fp32;
        for another dtype a cast copy, with oneDNN-prepacked linears for bf16 on CPU where available.

        The copy is made once per dtype and reused while the fp32 weights stay the same tensors, unmodified (their
        storage and in-place version counters are checked on every call), so that a bf16 caption does not pay for
        casting ~170M parameters (B-32) each time; the fp32 model itself is never changed.
        """
        if dtype == torch.float32:
            return DecodingWeights(self.text, self.decoder, None)
        sources = (self.text, self.decoder)
        tensors = [t for module in sources for t in (*module.parameters(), *module.buffers())]
        key = tuple((t.data_ptr(), t._version, t.device) for t in tensors)
        copies = _DECODING_COPIES.setdefault(self, {})
        cached = copies.get(dtype)
        if cached is None or cached[0] != key:
            copies.pop(dtype, None)  # free a stale copy before making the new one
            memo = {id(t): _cast(t, dtype) for t in tensors}
            text, decoder = (copy.deepcopy(module, memo).eval() for module in sources)
            head = None
            if dtype == torch.bfloat16 and onednn_bf16_available(decoder.lm_head.device):
                pack_for_onednn(text.blocks)
                pack_for_onednn(decoder)
                head = PackedLinear(decoder.lm_head.T, None)
            cached = (key, DecodingWeights(text, decoder, head))
            copies[dtype] = cached
        return cached[1]


class DecodingWeights(NamedTuple):
    """What a decoding session runs: text layers, multimodal decoder, and the vocabulary head as a module (None:
    ``features @ decoder.lm_head``)."""

    text: TextEncoder
    decoder: MultimodalDecoder
    head: nn.Module | None


REFINED_LOGITS = 16  # per row, the bf16 session's highest logits recomputed in fp32 (see DecodingSession._logits)

# per-model reduced-precision copies of the decoding weights; weak keys, so that a deleted model frees its copies
_DECODING_COPIES: weakref.WeakKeyDictionary[CoCa, dict[torch.dtype, tuple]] = weakref.WeakKeyDictionary()


def _cast(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A detached copy in ``dtype`` (integer tensors keep theirs); parameters stay parameters, without gradients."""
    cast = tensor.detach().to(dtype, copy=True) if tensor.is_floating_point() else tensor.detach().clone()
    return nn.Parameter(cast, requires_grad=False) if isinstance(tensor, nn.Parameter) else cast


def contrastive_loss(
    image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE over the batch with a learnable temperature (CLIP/CoCa)."""
    logits = logit_scale * image_features @ text_features.T
    labels = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


class DecodingSession:
    """Incremental decoding state for a batch of rows: feed one token per row, get next-token logits.

    With ``use_cache`` the unimodal and multimodal self-attention keep key/value caches and the cross-attention
    keys/values over the image tokens are computed once. Without it every step re-runs the whole prefix, like
    open_clip's ``generate``; both paths give the same logits up to float rounding.

    ``rows_per_image`` consecutive rows decode the same image (beam search): they share one copy of its keys and
    values, and must keep their image through :meth:`select`.

    ``dtype`` other than fp32 (bf16) runs the text layers, the decoder, the caches and the image keys/values in that
    dtype, with weights from :meth:`CoCa.decoding_weights`; :meth:`step` still returns fp32 logits, so that search
    strategies compare scores in fp32. fp32 is exactly the default computation (open_clip parity).
    """

    def __init__(
        self,
        model: CoCa,
        image_tokens: torch.Tensor,
        max_len: int,
        use_cache: bool,
        rows_per_image: int = 1,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        context = model.cfg.text.context_length
        if max_len > context:
            raise ValueError(
                f"A decoding session of {max_len} positions does not fit the text context length {context} (the start "
                f"token and any prefix fed count as positions); use max_len <= {context}."
            )
        self.model, self.use_cache, self.max_len, self.dtype = model, use_cache, max_len, dtype
        self.text, self.decoder, self.head = model.decoding_weights(dtype)
        self.shared_images = rows_per_image > 1
        if dtype != torch.float32:
            image_tokens = image_tokens.to(dtype)
        self.image_kv = self.decoder.image_kv(image_tokens)
        rows = image_tokens.shape[0] * rows_per_image
        self.prefix = torch.zeros(rows, 0, dtype=torch.long, device=image_tokens.device)
        if use_cache:
            self.text_caches = [KVCache(max_len) for _ in self.text.blocks]
            self.decoder_caches = [KVCache(max_len) for _ in self.decoder.self_blocks]
            self.key_valid = torch.zeros(rows, 0, dtype=torch.bool, device=image_tokens.device)

    @property
    def length(self) -> int:
        return self.prefix.shape[1]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append ``tokens`` [B] at the next position; return fp32 logits [B, vocab] for the position after it."""
        if self.length >= self.max_len:
            raise ValueError(f"Decoding session is full ({self.max_len} positions).")
        previous = self.prefix[:, -1:] if self.length else None
        self.prefix = torch.cat([self.prefix, tokens[:, None]], dim=1)
        text, decoder = self.text, self.decoder
        if not self.use_cache:
            token_outputs = self._uncached_text(self.prefix)
            return self._logits(decoder.features(token_outputs, self.image_kv)[:, -1])
        position = self.length - 1
        x = text.token_embedding(tokens[:, None]) + text.positional_embedding[position]
        if text.legacy_cls_mask:
            new_valid = (
                torch.ones_like(tokens[:, None], dtype=torch.bool) if previous is None else previous != text.pad_id
            )
        else:
            new_valid = tokens[:, None] != text.pad_id
        self.key_valid = torch.cat([self.key_valid, new_valid], dim=1)
        mask = None if bool(self.key_valid.all()) else self.key_valid[:, None, None, :]
        for block, cache in zip(text.blocks, self.text_caches):
            x = block(x, mask, cache)
        features = decoder.features(x, self.image_kv, self.decoder_caches)
        return self._logits(features[:, -1])

    def _logits(self, features: torch.Tensor) -> torch.Tensor:
        logits = (features @ self.decoder.lm_head if self.head is None else self.head(features)).float()
        if self.dtype == torch.float32:
            return logits  # ``.float()`` was a no-op: exactly the fp32 product
        # bf16 logits keep ~3 significant digits, which ties or swaps near-equal candidates: recompute the top ones in
        # fp32 from the same features and the fp32 head, so that argmax, beams and top-k rank them as fp32 would
        top = logits.topk(min(REFINED_LOGITS, logits.shape[-1]), dim=-1).indices
        columns = self.model.decoder.lm_head[:, top].permute(1, 2, 0)  # [B, R, W]
        exact = (columns * features.float()[:, None, :]).sum(-1)  # not a matmul: autocast leaves it in fp32
        return logits.scatter_(1, top, exact)

    def _uncached_text(self, prefix: torch.Tensor) -> torch.Tensor:
        text = self.text
        x = text.token_embedding(prefix) + text.positional_embedding[: prefix.shape[1]]
        mask = causal_mask(prefix.shape[1], prefix.device)[None, None] & text.key_valid(prefix)[:, None, None, :]
        for block in text.blocks:
            x = block(x, mask)
        return x

    def select(self, index: torch.Tensor) -> None:
        """Keep and reorder rows: beams reorder within their image, or finished rows are dropped."""
        self.prefix = self.prefix.index_select(0, index)
        if not self.shared_images:
            self.image_kv = [(k.index_select(0, index), v.index_select(0, index)) for k, v in self.image_kv]
        if self.use_cache:
            self.key_valid = self.key_valid.index_select(0, index)
            for cache in self.text_caches + self.decoder_caches:
                cache.select(index)
