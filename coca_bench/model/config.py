"""CoCa architecture configs as data, with a registry of presets.

Field names follow the paper's vocabulary (image encoder, unimodal text layers, multimodal layers, attentional
poolers). ``from_open_clip`` maps open_clip's ``model_configs/coca_*.json`` onto them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

PoolerKind = Literal["open_clip", "cascade", "parallel"]
MultimodalLayout = Literal["open_clip", "paper"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class VisionConfig:
    image_size: int = 224
    patch_size: int = 32
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    pooler: PoolerKind = "open_clip"
    """``open_clip``: one n-query pooler whose first output is the contrastive embedding (released weights).
    ``cascade``: the paper's default, a 1-query contrastive pooler on top of the generative pooler's outputs.
    ``parallel``: both poolers read the encoder tokens."""
    pooler_queries: int = 256
    pooler_heads: int = 8


@dataclass(frozen=True)
class TextConfig:
    """The unimodal text layers (causal self-attention only) and the multimodal layers share width and vocabulary."""

    vocab_size: int = 49408
    context_length: int = 76
    width: int = 512
    heads: int = 8
    unimodal_layers: int = 12
    multimodal_layers: int = 12
    mlp_dim: int = 2048
    legacy_cls_mask: bool = True
    """Released open_clip CoCa weights were trained with the [CLS] padding mask shifted by one position
    (``correct_cls_mask=False``). Keep it to reproduce them; turn it off for new models."""
    pad_id: int = 0
    sot_id: int = 49406
    eot_id: int = 49407
    multimodal_layout: MultimodalLayout = "open_clip"
    """``open_clip``: each multimodal layer is a self-attention + MLP block then a cross-attention + MLP block, two
    MLPs (open_clip's code, so every open_clip checkpoint; also the default of configs saved before this field).
    ``paper``: self-attention, cross-attention, then one MLP, which is what gives Table 1's decoder sizes."""


@dataclass(frozen=True)
class PreprocessConfig:
    image_size: int = 224
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"  # resize the shortest side, then centre-crop (open_clip's eval transform)


@dataclass(frozen=True)
class CocaConfig:
    embed_dim: int = 512
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    tokenizer: str = "clip_bpe"
    init_logit_scale: float = 2.659260036932778  # log(1 / 0.07): the paper's initial temperature
    caption_loss_weight: float = 2.0
    contrastive_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.vision.width % self.vision.heads or self.text.width % self.text.heads:
            raise ValueError(
                "CocaConfig: width must be divisible by heads in both the image encoder and the text layers."
            )
        if self.vision.pooler not in ("open_clip", "cascade", "parallel"):
            raise ValueError(
                f"CocaConfig: vision.pooler must be open_clip, cascade or parallel, not {self.vision.pooler!r}."
            )
        if self.text.multimodal_layout not in ("open_clip", "paper"):
            raise ValueError(
                f"CocaConfig: text.multimodal_layout must be open_clip or paper, not {self.text.multimodal_layout!r}."
            )
        if self.text.width % self.vision.pooler_heads:
            raise ValueError(
                "CocaConfig: the poolers' output width (text.width) must be divisible by vision.pooler_heads."
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CocaConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"CoCa config has unknown keys {unknown}; expected a subset of {sorted(known)}.")
        parts = {
            "vision": VisionConfig,
            "text": TextConfig,
            "preprocess": PreprocessConfig,
        }
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in parts:
                sub = parts[key]
                sub_known = {f.name for f in dataclasses.fields(sub)}
                bad = sorted(set(value) - sub_known)
                if bad:
                    raise ValueError(f"CoCa config section {key!r} has unknown keys {bad}.")
                value = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
                kwargs[key] = sub(**value)
            else:
                kwargs[key] = value
        return cls(**kwargs)


def from_open_clip(cfg: dict[str, Any]) -> CocaConfig:
    """Map an open_clip ``coca_*.json`` model config onto :class:`CocaConfig`."""
    v, t, m = cfg["vision_cfg"], cfg["text_cfg"], cfg["multimodal_cfg"]
    if "hf_model_name" in t:
        raise ValueError(
            "open_clip CoCa configs with a Hugging Face text tower are not supported; use a CLIP-BPE CoCa config."
        )
    if t.get("width", 512) != m.get("width", 512):
        raise ValueError("open_clip config: the text tower and the multimodal decoder must have the same width.")
    pool = v.get("attentional_pool", False)
    if not pool:
        raise ValueError("open_clip config: CoCa needs vision_cfg.attentional_pool (true, 'cascade' or 'parallel').")
    embed_dim = cfg["embed_dim"]
    width = t.get("width", 512)
    if pool is True and embed_dim != width:
        raise ValueError("open_clip config: with attentional_pool=true the embed_dim must equal the decoder width.")
    image_size = v.get("image_size", 224)
    mean = tuple(cfg.get("preprocess_cfg", {}).get("mean", CLIP_MEAN))
    std = tuple(cfg.get("preprocess_cfg", {}).get("std", CLIP_STD))
    return CocaConfig(
        embed_dim=embed_dim,
        vision=VisionConfig(
            image_size=image_size,
            patch_size=v.get("patch_size", 16),
            width=v.get("width", 768),
            layers=v.get("layers", 12),
            heads=v.get("width", 768) // v.get("head_width", 64),
            mlp_dim=int(v.get("width", 768) * v.get("mlp_ratio", 4.0)),
            pooler="open_clip" if pool is True else pool,
            pooler_queries=v.get("attn_pooler_queries", 256),
            pooler_heads=v.get("attn_pooler_heads", 8),
        ),
        text=TextConfig(
            vocab_size=t.get("vocab_size", 49408),
            context_length=t.get("context_length", 77),
            width=width,
            heads=t.get("heads", 8),
            unimodal_layers=t.get("layers", 12),
            multimodal_layers=m.get("layers", 12),
            mlp_dim=int(width * t.get("mlp_ratio", 4.0)),
            legacy_cls_mask=not t.get("correct_cls_mask", False),
            multimodal_layout="open_clip",  # open_clip's code builds two MLPs per multimodal layer, whatever the json
        ),
        preprocess=PreprocessConfig(image_size=image_size, mean=mean, std=std),
    )


def _paper(
    image_size: int,
    patch: int,
    vit_layers: int,
    vit_width: int,
    vit_mlp: int,
    n_uni: int,
    n_multi: int,
    dec_mlp: int,
    hidden: int,
    heads: int,
) -> CocaConfig:
    """The paper's Table 1 shapes (cascade poolers, 256 generative queries, one MLP per multimodal layer). The paper's
    64k sentencepiece vocabulary is not public; these presets use the CLIP BPE tokenizer so they can run here, which
    makes their embeddings and vocabulary head smaller than Table 1's (tests/test_model_presets.py counts with 64k)."""
    return CocaConfig(
        embed_dim=hidden,
        vision=VisionConfig(
            image_size=image_size,
            patch_size=patch,
            width=vit_width,
            layers=vit_layers,
            heads=heads,
            mlp_dim=vit_mlp,
            pooler="cascade",
            pooler_queries=256,
            pooler_heads=heads,
        ),
        text=TextConfig(
            width=hidden,
            heads=heads,
            unimodal_layers=n_uni,
            multimodal_layers=n_multi,
            mlp_dim=dec_mlp,
            legacy_cls_mask=False,
            multimodal_layout="paper",
        ),
        preprocess=PreprocessConfig(image_size=image_size),
    )


def _open_clip_preset(
    embed: int,
    image: int,
    patch: int,
    vit_layers: int,
    vit_width: int,
    text_width: int,
    text_heads: int,
    pooler_heads: int,
) -> CocaConfig:
    return CocaConfig(
        embed_dim=embed,
        vision=VisionConfig(
            image_size=image,
            patch_size=patch,
            width=vit_width,
            layers=vit_layers,
            heads=vit_width // 64,
            mlp_dim=4 * vit_width,
            pooler="open_clip",
            pooler_heads=pooler_heads,
        ),
        text=TextConfig(width=text_width, heads=text_heads, mlp_dim=4 * text_width),
        preprocess=PreprocessConfig(image_size=image),
    )


def _tiny(pooler: PoolerKind, legacy_cls_mask: bool, layout: MultimodalLayout = "open_clip") -> CocaConfig:
    """A few-layer model for tests and the bundled checkpoints: same code paths, seconds to run on a CPU."""
    return CocaConfig(
        embed_dim=64,
        vision=VisionConfig(
            image_size=64,
            patch_size=16,
            width=64,
            layers=2,
            heads=2,
            mlp_dim=128,
            pooler=pooler,
            pooler_queries=16,
            pooler_heads=2,
        ),
        text=TextConfig(
            context_length=32,
            width=64,
            heads=2,
            unimodal_layers=2,
            multimodal_layers=2,
            mlp_dim=128,
            legacy_cls_mask=legacy_cls_mask,
            multimodal_layout=layout,
        ),
        preprocess=PreprocessConfig(image_size=64),
    )


def _demo() -> CocaConfig:
    """The shipped ``demo`` checkpoints' shape: the paper's layout (cascade poolers, one MLP per multimodal layer) at
    a size that trains on 2 CPU cores in minutes. 64 x 64 pixels in 8 x 8 patches keep the bundled scenes' smallest
    shapes several patches wide; 32 generative queries pool 64 patches, as the paper's 256 pool 324. The CLIP BPE
    vocabulary (49,408 tokens) stays, so the tokenizer and every task work unchanged."""
    return CocaConfig(
        embed_dim=128,
        vision=VisionConfig(
            image_size=64,
            patch_size=8,
            width=128,
            layers=4,
            heads=4,
            mlp_dim=512,
            pooler="cascade",
            pooler_queries=32,
            pooler_heads=4,
        ),
        text=TextConfig(
            context_length=32,
            width=128,
            heads=4,
            unimodal_layers=2,
            multimodal_layers=2,
            mlp_dim=512,
            legacy_cls_mask=False,
            multimodal_layout="paper",
        ),
        preprocess=PreprocessConfig(image_size=64),
    )


PRESETS: dict[str, CocaConfig] = {
    # open_clip's released architectures (model_configs/coca_ViT-*.json)
    "coca_ViT-B-32": _open_clip_preset(512, 224, 32, 12, 768, 512, 8, 8),
    "coca_ViT-L-14": _open_clip_preset(768, 224, 14, 24, 1024, 768, 12, 12),
    # the paper's Table 1
    "coca-base": _paper(288, 18, 12, 768, 3072, 12, 12, 3072, 768, 12),
    "coca-large": _paper(288, 18, 24, 1024, 4096, 12, 12, 4096, 1024, 16),
    "coca-giant": _paper(288, 18, 40, 1408, 6144, 18, 18, 5632, 1408, 16),
    # small presets for tests and bundled checkpoints
    "tiny": _tiny("open_clip", legacy_cls_mask=True),
    "tiny-cascade": _tiny("cascade", legacy_cls_mask=False),
    "tiny-paper": _tiny("cascade", legacy_cls_mask=False, layout="paper"),  # the paper presets' code paths, tiny
    "coca-demo": _demo(),  # the shipped demo checkpoints: the paper layout, trained by coca_bench/training/trainer.py
}


def get_preset(name: str) -> CocaConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"Unknown CoCa preset {name!r}; known presets: {sorted(PRESETS)}.") from None
