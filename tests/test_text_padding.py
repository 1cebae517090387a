"""Text encoding computes each batch only up to its longest prompt (``CoCa.encode_text``), with the embeddings of
open_clip's full-context computation, under both [CLS] padding masks.

Why both masks: open_clip's released CoCa weights use a legacy mask shifted by one position, under which the [CLS]
attends to the first pad after a prompt (and not to itself); the correct mask lets it attend to the real tokens and
itself. Trimming must keep exactly the positions the [CLS] can see in each case.

The model is the tiny open_clip CoCa of ``conftest.tiny_open_clip``: seeded random weights with every weight
perturbed (``coca_bench.model.parity``), so no comparison passes on a degenerate all-zero output.
"""

from __future__ import annotations

import copy

import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from coca_bench.features import FeatureExtractor  # noqa: E402
from coca_bench.model.coca import TextEncoder  # noqa: E402
from coca_bench.model.parity import ours_from_open_clip  # noqa: E402
from coca_bench.settings import RunSettings  # noqa: E402

ARCH = "coca_tiny_test"
CONTEXT = 32  # conftest.TINY_OPEN_CLIP_CONFIG
TOL = 1e-5

# mixed lengths: short, empty (start and end tokens only), filling the whole context, medium
PROMPTS = ["a photo of a cat.", "", "a red circle above a blue square and " * 10, "a bad photo of the large dog"]
FULL = 2  # the prompt that fills the context


@pytest.fixture(scope="module", params=["legacy", "correct"])
def pair(request, tiny_open_clip):
    """(open_clip model, our CocaModel) on the same weights, with the given [CLS] mask on both sides."""
    reference = copy.deepcopy(tiny_open_clip[0]).eval()
    ours = ours_from_open_clip(reference, ARCH)
    legacy = request.param == "legacy"
    reference.text.correct_cls_mask = not legacy
    ours.network.text.legacy_cls_mask = legacy
    return reference, ours


@pytest.fixture(scope="module")
def ids() -> torch.Tensor:
    """The prompts tokenized by open_clip (ours refuses an empty string), plus a row with an inner pad id: the
    token ``!`` is id 0, which both masks treat as padding, so validity is not a prefix of the row."""
    ids = open_clip.get_tokenizer(ARCH)(PROMPTS)
    assert ids.shape == (len(PROMPTS), CONTEXT) and (ids[FULL] != 0).all()
    inner = torch.zeros(1, CONTEXT, dtype=torch.long)
    inner[0, :6] = torch.tensor([49406, 320, 0, 1125, 0, 49407])
    return torch.cat([ids, inner])


def real_lengths(ids: torch.Tensor) -> list[int]:
    """Per row, the position after its last non-pad token."""
    return [int((row != 0).nonzero().max()) + 1 for row in ids]


def batches(ids: torch.Tensor) -> list[torch.Tensor]:
    """Every prompt alone, the short ones together (trimmed), and all of them (the full prompt: nothing trimmed)."""
    short = [i for i in range(len(ids)) if i != FULL]
    return [ids[i : i + 1] for i in range(len(ids))] + [ids[short], ids]


def test_kept_length_is_the_longest_prompt_plus_one_pad_under_the_legacy_mask(pair, ids):
    _, ours = pair
    text = ours.network.text
    short = ids[[i for i in range(len(ids)) if i != FULL]]
    longest = max(real_lengths(short))
    extra = 1 if text.legacy_cls_mask else 0
    assert TextEncoder.kept_length(text.key_valid(short)) == longest + extra < CONTEXT
    assert TextEncoder.kept_length(text.key_valid(ids)) == CONTEXT
    for row, length in zip(ids, real_lengths(ids)):
        assert TextEncoder.kept_length(text.key_valid(row[None])) == min(length + extra, CONTEXT)


def test_trimmed_text_tower_equals_the_full_length_computation(pair, ids):
    _, ours = pair
    text = ours.network.text
    for batch in batches(ids):
        with torch.no_grad():
            full_embedding, full_tokens = text(batch)
            embedding, tokens = text(batch, trim_padding=True)
        keep = tokens.shape[1]
        assert keep == TextEncoder.kept_length(text.key_valid(batch)) and full_tokens.shape[1] == CONTEXT
        assert (embedding - full_embedding).abs().max() < TOL
        assert (tokens - full_tokens[:, :keep]).abs().max() < TOL  # the kept token outputs are unchanged too
        assert full_embedding.abs().max() > 0.1  # not a degenerate model


def test_encode_text_equals_open_clip(pair, ids):
    reference, ours = pair
    for batch in batches(ids):
        with torch.no_grad():
            expected = reference.encode_text(batch, normalize=True)
            unnormalised = reference.encode_text(batch, normalize=False)
        assert (ours.encode_text(batch) - expected).abs().max() < TOL
        assert (ours.network.encode_text(batch, normalize=False) - unnormalised).abs().max() < TOL


def test_one_position_fewer_changes_the_embedding(pair, ids, monkeypatch):
    """The kept length is tight: without its last position (the legacy mask's first pad, or the correct mask's last
    real token) the embedding moves far beyond the tolerance, so the tests above would catch an off-by-one."""
    reference, ours = pair
    short = ids[[i for i in range(len(ids)) if i != FULL]]
    with torch.no_grad():
        expected = reference.encode_text(short, normalize=True)
    kept_length = TextEncoder.kept_length
    monkeypatch.setattr(TextEncoder, "kept_length", staticmethod(lambda keys: kept_length(keys) - 1))
    assert (ours.encode_text(short) - expected).abs().max() > 100 * TOL


def test_legacy_cls_attends_the_first_pad_and_nothing_after_it(tiny_open_clip, ids):
    """Why the legacy mask needs one position more, in open_clip's own computation: the [CLS] output of a short
    prompt changes with the first pad's positional embedding, and not at all with the next pad's."""
    reference = copy.deepcopy(tiny_open_clip[0]).eval()
    row = ids[:1]
    first_pad = real_lengths(row)[0]
    # a random shift: a constant one would vanish in the layer norms
    shift = torch.randn(reference.text.width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = reference.encode_text(row, normalize=False)
        reference.text.positional_embedding[first_pad] += shift
        moved_pad = reference.encode_text(row, normalize=False)
        reference.text.positional_embedding[first_pad + 1] += shift
        moved_next = reference.encode_text(row, normalize=False)
    assert (moved_pad - before).abs().max() > 1e-2
    assert (moved_next - moved_pad).abs().max() == 0


def test_teacher_forcing_and_multimodal_features_stay_full_length(pair, ids):
    """Callers that need every position (caption loss, multimodal probe features) keep the full-length path."""
    _, ours = pair
    short = ids[[0, 1]]
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = ours.network(pixels, short)
    assert out["logits"].shape[:2] == (2, CONTEXT - 1)
    assert ours.multimodal_features(pixels, short).shape[:2] == (2, CONTEXT)


def test_feature_extractor_batches_texts_by_length_and_keeps_their_order(tiny_open_clip):
    """``embed_texts`` encodes length-sorted batches (tight for the trimming) and returns vectors in input order,
    equal to encoding each text alone."""
    reference = copy.deepcopy(tiny_open_clip[0]).eval()
    model = ours_from_open_clip(reference, ARCH)
    texts = [
        f"a {'very ' * (i % 5)}good photo of a {name}." for i, name in enumerate(["cat", "dog", "car", "tree"] * 3)
    ]
    lengths = []
    encode_text = model.encode_text

    def spy(batch: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        lengths.append(real_lengths(batch))
        return encode_text(batch, normalize=normalize)

    model.encode_text = spy
    extractor = FeatureExtractor(model, None, RunSettings(device="cpu", batch_size=4, num_workers=0, progress=False))
    vectors = extractor.embed_texts(texts)
    flat = [length for batch in lengths for length in batch]
    assert flat == sorted(flat) and len(lengths) == 3
    for text, vector in zip(texts, vectors):
        alone = encode_text(model.tokenizer([text]))[0].numpy()
        assert abs(vector - alone).max() < TOL
