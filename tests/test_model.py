"""The CoCa model on tiny presets: decoding strategies, cache equivalence, input validation, checkpoints, losses."""

from __future__ import annotations

import json

import pytest
import torch

from coca_bench.model import CoCa, GenerationConfig, from_network, get_preset, load_model, save_native
from coca_bench.model.checkpoints import convert_open_clip_state

EOS = 49407


def _tiny(preset: str = "tiny", seed: int = 0):
    torch.manual_seed(seed)
    return from_network(CoCa(get_preset(preset)).eval(), name=f"{preset}-{seed}")


@pytest.fixture(scope="module")
def tiny():
    return _tiny()


@pytest.fixture(scope="module")
def pixels():
    return torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))


STRATEGY_OPTIONS = [
    ("greedy", {}),
    ("beam", {"num_beams": 6, "num_beam_groups": 3}),
    ("beam", {"num_beams": 4, "num_beam_groups": 1, "beam_score": "logprobs", "length_penalty": 0.6}),
    ("top_k", {"top_k": 20, "seed": 3}),
    ("top_p", {"top_p": 0.8, "seed": 3, "temperature": 0.7}),
]


@pytest.mark.parametrize("strategy,options", STRATEGY_OPTIONS)
@pytest.mark.parametrize("preset", ["tiny", "tiny-cascade", "tiny-paper"])
def test_cached_generation_equals_uncached(preset, strategy, options, pixels):
    model = _tiny(preset)
    cached = model.generate(pixels, strategy, max_new_tokens=12, **options)
    uncached = model.generate(pixels, strategy, max_new_tokens=12, use_cache=False, **options)
    assert torch.equal(cached, uncached)
    assert cached[:, 0].eq(49406).all() and cached.shape[1] <= 13


EOS_BOOSTS = (3.0, 5.0)


@pytest.mark.parametrize("preset", ["tiny", "tiny-cascade", "tiny-paper"])
def test_cache_equivalence_with_early_stops_and_padding(preset):
    """Rows of one batch finish at different steps, so cached decoding must drop (greedy, sampling) or park (beam,
    fed padding under the pad mask) exactly the finished rows of its caches while the others go on.

    End-of-text is made likely by adding ``boost`` x (final decoder feature 0) to its logit; that feature varies with
    image and position, so rows end early, late or at the forced last position. The test asserts that every strategy
    saw such mixed finishing, without which it would only compare full-length rows."""
    model = _tiny(preset)
    images = torch.randn(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    max_new, min_new = 12, 1
    head = model.network.decoder.lm_head
    original = head[0, EOS].item()
    mixed = [0] * len(STRATEGY_OPTIONS)
    for boost in EOS_BOOSTS:
        with torch.no_grad():
            head[0, EOS] = original + boost
        for i, (strategy, options) in enumerate(STRATEGY_OPTIONS):
            kwargs = {"max_new_tokens": max_new, "min_new_tokens": min_new, **options}
            cached = model.generate(images, strategy, **kwargs)
            assert torch.equal(cached, model.generate(images, strategy, use_cache=False, **kwargs)), (strategy, boost)
            ends = [row.index(EOS) if EOS in row else len(row) for row in cached.tolist()]  # no EOS: beam at the limit
            assert min(ends) >= min_new + 1, "end-of-text is masked until min_new_tokens tokens exist"
            after_end = torch.arange(cached.shape[1])[None] > torch.tensor(ends)[:, None]
            assert cached[after_end].eq(0).all(), "finished rows are padded with pad_id"
            mixed[i] += len(set(ends)) > 1 and min(ends) < max_new  # differing ends, one before the forced last token
    unmixed = [STRATEGY_OPTIONS[i] for i, n in enumerate(mixed) if not n]
    assert not unmixed, f"{preset}: rows never finished at different steps for {unmixed}; recalibrate EOS_BOOSTS"


@pytest.mark.parametrize("strategy,options", STRATEGY_OPTIONS)
@pytest.mark.parametrize("use_cache", [True, False])
def test_max_new_tokens_beyond_the_context_raises(tiny, pixels, strategy, options, use_cache):
    """The start token takes one of the context_length (32) positions, so 31 new tokens is the most that fit; a full
    length caption can then be fed back to the model."""
    context = tiny.config.text.context_length
    limit = context - 1
    for too_many in (limit + 1, limit + 3, 4 * context):
        message = rf"^max_new_tokens={too_many} does not fit .* is {context}, so use max_new_tokens <= {limit}\.$"
        with pytest.raises(ValueError, match=message):
            tiny.generate(pixels, strategy, max_new_tokens=too_many, use_cache=use_cache, **options)
    # end-of-text masked until the last position: every row runs to the limit
    out = tiny.generate(
        pixels[:1], strategy, max_new_tokens=limit, min_new_tokens=limit - 1, use_cache=use_cache, **options
    )
    assert out.shape[1] == context
    assert torch.isfinite(tiny.caption_loss(pixels[:1], out))


def test_decoding_session_beyond_the_context_raises(tiny, pixels):
    """A session holds at most context_length positions, whatever prefix has already been fed."""
    image_tokens = tiny.decoder_image_tokens(pixels)
    context = tiny.config.text.context_length
    message = rf"does not fit the text context length {context} \(.*\); use max_len <= {context}\.$"
    with pytest.raises(ValueError, match=message):
        tiny.network.start_decoding(image_tokens, max_len=context + 1)
    session = tiny.network.start_decoding(image_tokens, max_len=context)
    prefix = tiny.tokenizer(["a red circle above a blue square"])[0]
    prefix = prefix[prefix != 0].expand(len(pixels), -1)
    for position in range(context):
        session.step(prefix[:, position] if position < prefix.shape[1] else torch.full_like(prefix[:, 0], 320))
    with pytest.raises(ValueError, match="full"):
        session.step(prefix[:, 0])


def test_every_row_has_one_end_token_then_padding(pixels):
    """Rows finish at every possible step, including the one just before the forced last position, while other rows
    of the same batch go on (EOS made likely with a range of strengths so that finishing is mixed)."""
    model = _tiny()
    with torch.no_grad():
        model.network.decoder.ln_final.bias[0] += 10.0
    mixed = 0
    for weight in [0.6 + 0.02 * i for i in range(11)]:
        with torch.no_grad():
            model.network.decoder.lm_head[0, EOS] += weight
        for max_new in range(2, 9):
            for strategy, options in STRATEGY_OPTIONS:
                out = model.generate(pixels, strategy, max_new_tokens=max_new, min_new_tokens=1, **options)
                early = []
                for row in out.tolist():
                    if EOS not in row:  # beam search: a hypothesis that reached the length limit (as in open_clip)
                        assert strategy == "beam" and len(row) == max_new + 1 and 0 not in row, row
                        early.append(False)
                        continue
                    end = row.index(EOS)
                    assert row.count(EOS) == 1 and all(t == 0 for t in row[end + 1 :]), (strategy, max_new, row)
                    early.append(end < max_new)
                mixed += any(early) and not all(early)
        with torch.no_grad():
            model.network.decoder.lm_head[0, EOS] -= weight
    assert mixed >= 5, "rows of one batch must finish at different steps for this test to mean anything"


def test_sampling_is_seeded(tiny, pixels):
    a = tiny.generate(pixels, "top_k", top_k=50, seed=1, max_new_tokens=10)
    assert torch.equal(a, tiny.generate(pixels, "top_k", top_k=50, seed=1, max_new_tokens=10))
    assert not torch.equal(a, tiny.generate(pixels, "top_k", top_k=50, seed=2, max_new_tokens=10))


def test_greedy_is_argmax_of_teacher_forced_logits(tiny, pixels):
    """Each greedy token is the argmax of the full (uncached, teacher-forced) forward pass on the prefix."""
    out = tiny.generate(pixels, "greedy", max_new_tokens=6, min_new_tokens=0)
    with torch.no_grad():
        logits = tiny.network(pixels, out)["logits"]
    assert torch.equal(logits[:, :-1].argmax(-1), out[:, 1:-1])


def test_caption_decodes_to_text(tiny, pixels):
    captions = tiny.caption(pixels, "greedy", max_new_tokens=5)
    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)
    ids = tiny.tokenizer(["a red circle"])
    assert tiny.tokenizer.decode(ids[0]) == "a red circle"


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.randn(2, 3, 32, 32), "64x64"),
        (torch.randn(2, 1, 64, 64), "3 colour channels"),
        (torch.randn(3, 64, 64), r"\[B, 3, H, W\]"),
        (torch.randint(0, 9, (2, 3, 64, 64)), "float pixel tensor"),
    ],
)
def test_bad_pixels_raise(tiny, bad, message):
    with pytest.raises(ValueError, match=message):
        tiny.encode_image(bad)


def test_bad_tokens_raise(tiny):
    with pytest.raises(ValueError, match=r"\[0, 49408\)"):
        tiny.encode_text(torch.tensor([[49406, 60000, 49407]]))
    with pytest.raises(ValueError, match="empty"):
        tiny.encode_text(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="non-empty"):
        tiny.encode_text(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        tiny.tokenizer(["a cat", "  "])
    with pytest.raises(ValueError, match="context length"):
        tiny.encode_text(torch.ones(1, 40, dtype=torch.long))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_new_tokens": 0}, "max_new_tokens must be > 0"),
        ({"max_new_tokens": -3}, "max_new_tokens must be > 0"),
        ({"strategy": "nucleus"}, "strategy must be one of"),
        ({"num_beams": 5, "num_beam_groups": 3}, "divisible"),
        ({"strategy": "top_p", "top_p": 0.0}, "top_p"),
    ],
)
def test_bad_generation_options_raise(tiny, pixels, options, message):
    options = {"strategy": "beam", **options}
    with pytest.raises(ValueError, match=message):
        tiny.generate(pixels, **options)


def test_generation_config_records_settings():
    cfg = GenerationConfig()
    assert cfg.to_dict()["beam_score"] == "logits" and cfg.num_beams == 6 and cfg.num_beam_groups == 3


def test_native_checkpoint_round_trip(tiny, pixels, tmp_path):
    save_native(tiny.network, tmp_path / "ckpt")
    loaded = load_model(str(tmp_path / "ckpt"))
    assert torch.equal(loaded.encode_image(pixels), tiny.encode_image(pixels))
    assert loaded.name == "ckpt" and len(loaded.weights_sha256) == 64
    assert loaded.fingerprint == load_model(str(tmp_path / "ckpt" / "model.safetensors")).fingerprint


def test_checkpoint_that_does_not_fit_names_keys(tiny, tmp_path):
    save_native(tiny.network, tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    meta["model"]["text"]["unimodal_layers"] = 3
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"missing keys \['text\.blocks\.2\.attn\.out\.bias'"):
        load_model(str(tmp_path / "ckpt"))


def test_bad_specs_raise(tmp_path):
    with pytest.raises(ValueError, match="not a bundled name"):
        load_model(str(tmp_path / "nothing-here"))
    with pytest.raises(ValueError, match="open_clip:<arch>"):
        load_model("open_clip:coca_ViT-B-32")
    with pytest.raises(ValueError, match="no CoCa architecture"):
        load_model("open_clip:ViT-B-32:weights.bin")


def test_bundled_checkpoints_are_deterministic():
    a, b = load_model("tiny-random-s0"), load_model("tiny-random-s1")
    assert a.weights_sha256 != b.weights_sha256
    with torch.random.fork_rng():
        torch.manual_seed(0)
        reference = CoCa(get_preset("tiny"))
    state = a.network.state_dict()
    assert all(torch.equal(state[k], v) for k, v in reference.state_dict().items())


@pytest.mark.parametrize("filename", ["plain.bin", "train.pt", "weights.safetensors"])
def test_open_clip_file_import_matches_open_clip(tiny_open_clip, filename, pixels):
    reference, path = tiny_open_clip
    files = path.parent
    model = load_model(f"open_clip:coca_tiny_test:{files / filename}")
    ids = model.tokenizer(["a red circle", "two blue squares and a star"])
    with torch.no_grad():
        assert (model.encode_image(pixels) - reference.encode_image(pixels, normalize=True)).abs().max() < 1e-5
        assert (model.encode_text(ids) - reference.encode_text(ids, normalize=True)).abs().max() < 1e-5
        expected = reference.generate(pixels, generation_type="top_k", top_k=1, seq_len=10)
    assert torch.equal(model.generate(pixels, "greedy", max_new_tokens=9), expected)


class NotAStateDict:
    """An arbitrary pickled object: loading it would run code, so the weights-only loader must refuse it."""


def test_open_clip_pickle_is_refused(tmp_path):
    torch.save({"payload": NotAStateDict()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="weights-only"):
        load_model(f"open_clip:coca_ViT-B-32:{tmp_path / 'evil.pt'}")


def test_losses_follow_the_paper(tiny, pixels):
    open_clip_loss = pytest.importorskip("open_clip.loss")
    ids = tiny.tokenizer(["a red circle", "a blue square on the left", "a star"])
    with torch.no_grad():
        out = tiny.network(pixels, ids)
        losses = tiny.network.loss(pixels, ids)
        reference = open_clip_loss.ClipLoss()(out["image_features"], out["text_features"], out["logit_scale"])
    assert torch.allclose(losses["contrastive_loss"], reference, atol=1e-6)
    assert torch.allclose(losses["loss"], 1.0 * losses["contrastive_loss"] + 2.0 * losses["caption_loss"])
    # hand-computed caption loss: mean over non-pad label positions of -log softmax(logits)[label]
    logp = out["logits"].log_softmax(-1)
    labels = out["labels"]
    picked = logp.gather(-1, labels[..., None])[..., 0][labels != 0]
    assert torch.allclose(losses["caption_loss"], -picked.mean(), atol=1e-6)


def test_video_is_mean_of_frame_embeddings(tiny):
    frames = torch.randn(2, 4, 3, 64, 64)
    per_frame = tiny.encode_image(frames.flatten(0, 1)).view(2, 4, -1)
    expected = torch.nn.functional.normalize(per_frame.mean(1), dim=-1)
    assert torch.allclose(tiny.encode_video(frames), expected, atol=1e-6)
    assert tiny.video_tokens(frames).shape == (2, 4 * 17, 64)
    with pytest.raises(ValueError, match=r"\[B, T, 3, H, W\]"):
        tiny.encode_video(torch.randn(2, 3, 64, 64))


def test_probe_features_shapes(tiny, pixels):
    ids = tiny.tokenizer(["a", "b c", "d e f"])
    assert tiny.image_tokens(pixels).shape == (3, 17, 64)
    assert tiny.decoder_image_tokens(pixels).shape == (3, 15, 64)
    assert tiny.multimodal_features(pixels, ids).shape == (3, 32, 64)


def test_bf16_autocast_close_to_fp32(tiny, pixels):
    fp32 = tiny.encode_image(pixels)
    with tiny.autocast("bf16"):
        bf16 = tiny.encode_image(pixels)
    assert (fp32 - bf16.float()).abs().max() < 0.05
    with pytest.raises(ValueError, match="fp16 autocast is not supported on the CPU"):
        with tiny.autocast("fp16"):
            pass


def test_convert_open_clip_state_splits_fused_projections():
    state = {
        "text_decoder.cross_attn.0.attn.in_proj_weight": torch.arange(12.0).view(6, 2),
        "visual.attn_pool.attn.k_proj_weight": torch.zeros(2, 3),
        "visual.attn_pool.attn.v_proj_weight": torch.ones(2, 3),
        "module.text.transformer.resblocks.1.mlp.c_fc.weight": torch.ones(1),
        "text.attn_mask": torch.ones(1),
    }
    out = convert_open_clip_state(state)
    assert torch.equal(out["decoder.cross_blocks.0.attn.q.weight"], torch.arange(4.0).view(2, 2))
    assert torch.equal(out["decoder.cross_blocks.0.attn.kv.weight"], torch.arange(4.0, 12.0).view(4, 2))
    assert torch.equal(out["visual.gen_pooler.attn.kv.weight"], torch.cat([torch.zeros(2, 3), torch.ones(2, 3)]))
    assert "text.blocks.1.mlp.fc.weight" in out and not any("attn_mask" in k for k in out)


def test_answer_log_likelihoods_reuse_the_prefix_and_equal_full_teacher_forced_passes():
    from coca_bench.model import load_model
    from coca_bench.model.scoring import answer_log_likelihoods_reference

    model = load_model("tiny-random-s0")
    torch.manual_seed(0)
    pixels = torch.randn(2, 3, 64, 64)
    prompts = ["question: what colour is the square? answer:", "question: how many shapes? answer:"]
    candidates = ["red", "dark blue", "2", "yes", "a very long answer indeed"]
    fast = model.answer_log_likelihoods(pixels, prompts, candidates)
    t = model.tokenizer
    strip = lambda row: row.tolist()[: row.tolist().index(t.eot_id)]  # noqa: E731
    prompt_ids = [strip(row) for row in t(prompts)]
    candidate_ids = [strip(row)[1:] + [t.eot_id] for row in t(candidates)]
    slow = answer_log_likelihoods_reference(model.network, pixels, prompt_ids, candidate_ids)
    assert fast.shape == (2, 5)
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-5)
    assert fast[0].argmax() != fast[0].argmin()  # the candidates are told apart
    with pytest.raises(ValueError, match="one prompt per image"):
        model.answer_log_likelihoods(pixels, prompts[:1], candidates)


def test_greedy_after_a_prompt_continues_the_prompt_like_the_teacher_forced_argmax():
    from coca_bench.model import load_model

    model = load_model("tiny-random-s0")
    torch.manual_seed(1)
    pixels = torch.randn(2, 3, 64, 64)
    prompt = "question: what colour is it? answer:"
    ids = model.generate(pixels, "greedy", prompt=prompt, max_new_tokens=4, min_new_tokens=0)
    prompt_ids = model.tokenizer([prompt])[0].tolist()
    prompt_ids = prompt_ids[: prompt_ids.index(model.tokenizer.eot_id)]
    assert ids[:, : len(prompt_ids)].tolist() == [prompt_ids, prompt_ids]
    for row in range(2):  # each new token is the argmax of a full teacher-forced pass over what precedes it
        for position in range(len(prompt_ids), ids.shape[1] - 1):
            sequence = ids[row, :position].tolist()
            if model.tokenizer.eot_id in sequence:
                break
            tokens = torch.tensor([(sequence + [0] * 32)[:32]])
            logits = model.network(pixels[row : row + 1], tokens)["logits"][0, position - 1]
            assert int(logits.argmax()) == int(ids[row, position])
    with pytest.raises(ValueError, match="not beam search"):
        model.generate(pixels, "beam", prompt=prompt)
    with pytest.raises(ValueError, match="does not fit"):
        model.generate(pixels, "greedy", prompt=prompt, max_new_tokens=31)
