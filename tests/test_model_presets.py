"""Preset shapes: the paper presets against Table 1, the multimodal layer layouts, and how the layout is stored."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from coca_bench.model import PRESETS, CoCa, CocaConfig, from_network, get_preset, load_model, save_native
from coca_bench.model.layers import MLP

# Table 1 (arXiv 2205.01917v2): image encoder, text decoder, total, in parameters, and the relative tolerance.
# CoCa (giant) is printed rounded to one significant digit (1B, 1.1B, 2.1B), hence its wider tolerance.
TABLE_1 = {
    "coca-base": (86e6, 297e6, 383e6, 0.02),
    "coca-large": (303e6, 484e6, 787e6, 0.02),
    "coca-giant": (1.0e9, 1.1e9, 2.1e9, 0.10),
}
PAPER_VOCAB = 64_000  # the paper's sentencepiece vocabulary


def _count(params) -> int:
    return sum(p.numel() for p in params)


def _parts(network: CoCa) -> dict[str, int]:
    """Split every parameter into exactly one of: image encoder, text decoder, contrastive/generative heads."""
    visual, text = network.visual, network.text
    heads = [*visual.gen_pooler.parameters(), visual.proj, text.text_projection, network.logit_scale]
    if visual.con_pooler is not None:
        heads += list(visual.con_pooler.parameters())
    head_ids = {id(p) for p in heads}
    image = [p for p in visual.parameters() if id(p) not in head_ids]
    decoder = [p for p in (*text.parameters(), *network.decoder.parameters()) if id(p) not in head_ids]
    return {
        "image": _count(image),
        "decoder": _count(decoder),
        "heads": _count(heads),
        "all": _count(network.parameters()),
    }


@pytest.mark.parametrize("preset", sorted(TABLE_1))
def test_paper_presets_match_table_1_parameter_counts(preset):
    """Built on the meta device (no memory), with the paper's 64k vocabulary instead of the presets' CLIP BPE one.

    What counts where, so that the columns add up as Table 1's do (383 = 86 + 297, 787 = 303 + 484):

    - image encoder: the ViT (patch, class and position embeddings, ``ln_pre``, the layers, ``ln_post``);
    - text decoder: token embedding, [CLS] embedding, text positions, the unimodal layers and their final norm, the
      multimodal layers, the decoder's final norm and its vocabulary head, which is untied from the token embedding
      (two 64k x width matrices: about 2 x 49M of Base's 297M);
    - neither: the attentional poolers, the two contrastive projections and the logit scale (about 6M for Base,
      11M for Large, 20M for giant: 1.6%, 1.4%, 0.9% of the totals). The total is image encoder + text decoder.

    With open_clip's layout (a second MLP per multimodal layer) the decoders come out at 354M and 586M instead.
    """
    image, decoder, total, tolerance = TABLE_1[preset]
    cfg = get_preset(preset)
    cfg = dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, vocab_size=PAPER_VOCAB))
    with torch.device("meta"):
        parts = _parts(CoCa(cfg))
    assert parts["image"] + parts["decoder"] + parts["heads"] == parts["all"], "every parameter counted exactly once"
    got = {"image encoder": parts["image"], "text decoder": parts["decoder"]}
    got["total"] = got["image encoder"] + got["text decoder"]
    want = {"image encoder": image, "text decoder": decoder, "total": total}
    for name, count in got.items():
        assert abs(count / want[name] - 1) <= tolerance, f"{preset} {name}: {count / 1e6:.1f}M vs {want[name]:.3g}"


def _mlps(module: nn.Module) -> int:
    return sum(isinstance(m, MLP) for m in module.modules())


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_multimodal_layer_mlps_follow_the_preset_layout(preset):
    """The paper presets (and ``tiny-paper``) use the paper's layer; open_clip's architectures keep open_clip's."""
    cfg = get_preset(preset)
    paper = preset.startswith("coca-") or preset == "tiny-paper"
    assert cfg.text.multimodal_layout == ("paper" if paper else "open_clip")
    with torch.device("meta"):
        decoder = CoCa(cfg).decoder
    assert _mlps(decoder) == cfg.text.multimodal_layers * (1 if paper else 2)


def test_config_without_layout_loads_as_open_clip(tmp_path):
    """Native checkpoints written before ``multimodal_layout`` existed have no such key: they are open_clip layout."""
    torch.manual_seed(0)
    model = from_network(CoCa(get_preset("tiny")).eval())
    save_native(model.network, tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "config.json").read_text())
    assert meta["model"]["text"].pop("multimodal_layout") == "open_clip"
    (tmp_path / "old" / "config.json").write_text(json.dumps(meta))
    loaded = load_model(str(tmp_path / "old"))
    assert loaded.config.text.multimodal_layout == "open_clip"
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    for strategy in ("greedy", "beam"):
        expected = model.generate(pixels, strategy, max_new_tokens=6)
        assert torch.equal(loaded.generate(pixels, strategy, max_new_tokens=6), expected)


def test_paper_layout_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = from_network(CoCa(get_preset("tiny-paper")).eval())
    save_native(model.network, tmp_path / "paper")
    assert json.loads((tmp_path / "paper" / "config.json").read_text())["model"]["text"]["multimodal_layout"] == "paper"
    loaded = load_model(str(tmp_path / "paper"))
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ids = loaded.tokenizer(["a red circle", "two squares"])
    assert torch.equal(loaded.caption_loss(pixels, ids), model.caption_loss(pixels, ids))
    assert torch.equal(loaded.generate(pixels, max_new_tokens=6), model.generate(pixels, max_new_tokens=6))


def test_unknown_layout_is_refused():
    data = get_preset("tiny").to_dict()
    data["text"]["multimodal_layout"] = "gpt"
    with pytest.raises(ValueError, match="multimodal_layout must be open_clip or paper"):
        CocaConfig.from_dict(data)
