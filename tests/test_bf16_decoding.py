"""Opt-in bf16 decoding (``decode_dtype="bf16"``): fp32 stays the default and exact, bf16 really runs in bf16, gives
well-formed captions that mostly agree with fp32, and never changes the fp32 model.

Agreement measured on this module's seeded inputs (tiny preset, 8 images, 16 new tokens; Xeon with AMX, torch 2.14):
greedy 91% of token positions (7 of 8 captions identical), beam 71% (4 of 8), top_k 86% (3 of 8), top_p 100%; the
plain-bf16 fallback, greedy: 100%. The assertions ask for a majority of positions: a bound with margin, which a broken
bf16 path (garbage tokens) would not reach; that bf16 really ran is checked on the session itself.
"""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import run_task

from coca_bench import hardware
from coca_bench.model import CoCa, GenerationConfig, from_network, get_preset
from coca_bench.model import coca as coca_module
from coca_bench.model.coca import REFINED_LOGITS, DecodingSession

NEW_TOKENS = 16
STRATEGIES = {
    "greedy": {},
    "beam": {"num_beams": 4, "num_beam_groups": 2},
    "top_k": {"top_k": 20, "seed": 3},
    "top_p": {"top_p": 0.9, "seed": 3},
}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models decode as many small ops; one thread keeps them fast when a neighbour keeps the cores busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return from_network(CoCa(get_preset("tiny")))


@pytest.fixture(scope="module")
def images(tiny):
    size = tiny.config.vision.image_size
    return torch.randn(8, 3, size, size, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def sessions(monkeypatch):
    """Every decoding session that ``generate`` opens, to check what it actually ran in."""
    opened: list[DecodingSession] = []
    original = coca_module.CoCa.start_decoding

    def recording(self, *args, **kwargs):
        opened.append(original(self, *args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(coca_module.CoCa, "start_decoding", recording)
    return opened


def _agreement(reference: torch.Tensor, other: torch.Tensor, pad_id: int) -> float:
    """Share of the reference's generated positions (start token excluded) where ``other`` has the same token."""
    width = max(reference.shape[1], other.shape[1])
    padded = [torch.nn.functional.pad(ids, (0, width - ids.shape[1]), value=pad_id) for ids in (reference, other)]
    counted = padded[0][:, 1:] != pad_id
    return float((padded[0][:, 1:] == padded[1][:, 1:])[counted].float().mean())


def _assert_well_formed(ids: torch.Tensor, cfg, max_new_tokens: int = NEW_TOKENS) -> None:
    """Start token first, then one end token and padding after it; only a beam that ran to the length limit
    has no end token (open_clip's rule too)."""
    assert ids.dtype == torch.long and ids.shape[1] <= max_new_tokens + 1
    assert bool((ids[:, 0] == cfg.sot_id).all())
    for row in ids.tolist():
        assert all(0 <= token < cfg.vocab_size for token in row) and cfg.sot_id not in row[1:], row
        if cfg.eot_id not in row:
            assert len(row) == max_new_tokens + 1 and cfg.pad_id not in row, row
            continue
        end = row.index(cfg.eot_id)
        assert cfg.pad_id not in row[1:end] and all(token == cfg.pad_id for token in row[end + 1 :]), row


def test_fp32_default_is_unchanged_and_bf16_leaves_the_model_alone(tiny, images, sessions):
    state = {k: v.clone() for k, v in tiny.network.state_dict().items()}
    before = tiny.generate(images, "greedy", max_new_tokens=NEW_TOKENS)
    assert GenerationConfig().decode_dtype == "fp32"
    assert torch.equal(tiny.generate(images, "greedy", max_new_tokens=NEW_TOKENS, decode_dtype="fp32"), before)
    tiny.generate(images, "greedy", max_new_tokens=NEW_TOKENS, decode_dtype="bf16")
    assert torch.equal(tiny.generate(images, "greedy", max_new_tokens=NEW_TOKENS), before)
    assert all(torch.equal(v, state[k]) and v.dtype == state[k].dtype for k, v in tiny.network.state_dict().items())
    fp32_sessions = [s for i, s in enumerate(sessions) if i != 2]
    assert all(s.dtype == torch.float32 and s.text is tiny.network.text and s.head is None for s in fp32_sessions)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_bf16_runs_in_bf16_and_mostly_agrees_with_fp32(tiny, images, sessions, strategy):
    options = dict(max_new_tokens=NEW_TOKENS, **STRATEGIES[strategy])
    fp32 = tiny.generate(images, strategy, **options)
    bf16 = tiny.generate(images, strategy, decode_dtype="bf16", **options)
    session = sessions[-1]
    # the probe: an ignored option would leave fp32 weights, caches and image keys/values
    assert session.dtype == torch.bfloat16
    assert session.image_kv[0][0].dtype == torch.bfloat16
    assert session.text_caches[0].k.dtype == torch.bfloat16 and session.decoder_caches[-1].v.dtype == torch.bfloat16
    assert session.decoder.lm_head.dtype == torch.bfloat16
    _assert_well_formed(bf16, tiny.config.text)
    _assert_well_formed(fp32, tiny.config.text)
    agreement = _agreement(fp32, bf16, tiny.config.text.pad_id)
    assert agreement > 0.5, f"{strategy}: bf16 agrees with fp32 on only {agreement:.0%} of token positions"


def test_bf16_top_logits_are_recomputed_in_fp32(tiny, images):
    """bf16 logits carry ~3 significant digits; the candidates a search compares come back in fp32."""
    network = tiny.network
    session = network.start_decoding(network.image_features(images[:1])[1], 4, dtype=torch.bfloat16)
    features = torch.randn(3, tiny.config.text.width, generator=torch.Generator().manual_seed(0)).bfloat16()
    rounded = (features @ session.decoder.lm_head if session.head is None else session.head(features)).float()
    logits = session._logits(features)
    exact = features.float() @ network.decoder.lm_head
    top = rounded.topk(REFINED_LOGITS, dim=-1).indices
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits.gather(1, top), exact.gather(1, top), rtol=1e-5, atol=1e-5)
    assert torch.equal(logits.argmax(dim=-1), exact.argmax(dim=-1))
    rest = torch.ones_like(logits, dtype=torch.bool).scatter_(1, top, False)
    assert torch.equal(logits[rest], rounded[rest]) and not torch.equal(rounded, exact)  # the rest stays bf16-rounded


def test_bf16_weights_are_cast_once_and_recast_after_an_in_place_update():
    torch.manual_seed(0)
    network = CoCa(get_preset("tiny")).eval()
    first = network.decoding_weights(torch.bfloat16)
    assert network.decoding_weights(torch.bfloat16) is first
    assert network.decoding_weights(torch.float32).text is network.text
    with torch.no_grad():
        network.decoder.ln_final.bias.add_(1.0)  # as an optimiser step or load_state_dict would
    second = network.decoding_weights(torch.bfloat16)
    assert second is not first
    assert torch.equal(second.decoder.ln_final.bias, network.decoder.ln_final.bias.bfloat16())
    assert network.decoder.ln_final.bias.dtype == torch.float32


def test_bf16_without_onednn_falls_back_to_plain_bf16_layers(images, monkeypatch):
    """Where prepacked oneDNN bf16 is missing (other devices, other builds) the cast copy runs as it is."""
    monkeypatch.setattr(coca_module, "onednn_bf16_available", lambda device: False)
    torch.manual_seed(0)
    model = from_network(CoCa(get_preset("tiny")))
    weights = model.network.decoding_weights(torch.bfloat16)
    assert weights.head is None and isinstance(weights.text.blocks[0].attn.qkv, torch.nn.Linear)
    ids = model.generate(images, "greedy", max_new_tokens=NEW_TOKENS, decode_dtype="bf16")
    _assert_well_formed(ids, model.config.text)
    fp32 = model.generate(images, "greedy", max_new_tokens=NEW_TOKENS)
    assert _agreement(fp32, ids, model.config.text.pad_id) > 0.5


def test_bf16_works_uncached_and_under_autocast(tiny, images):
    options = dict(max_new_tokens=6, decode_dtype="bf16")
    ids = tiny.generate(images[:2], "greedy", use_cache=False, **options)
    _assert_well_formed(ids, tiny.config.text, max_new_tokens=6)
    with tiny.autocast("bf16"):
        ids = tiny.generate(images[:2], "beam", num_beams=2, num_beam_groups=1, **options)
    _assert_well_formed(ids, tiny.config.text, max_new_tokens=6)


@pytest.mark.parametrize("value", ["fp16", "float32", "BF16", torch.bfloat16, None])
def test_invalid_decode_dtype_raises(tiny, images, value):
    with pytest.raises(ValueError, match="decode_dtype must be one of"):
        tiny.generate(images[:1], "greedy", max_new_tokens=4, decode_dtype=value)


# ------------------------------------------------------------------------------- CPUs without native bf16 arithmetic
EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni
"""
XEON_AMX = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: avx avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8
"""
SKYLAKE_AVX512 = """model name\t: Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz
flags\t\t: avx avx2 avx512f avx512dq avx512bw avx512vl avx512cd
"""
NEOVERSE_V1 = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid bf16 i8mm sve
CPU implementer\t: 0x41
"""


@pytest.mark.parametrize(
    ("text", "model", "flags", "native"),
    [
        (EPYC_AVX2, "AMD EPYC 7B12", ("avx2",), False),
        (XEON_AMX, "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz",
         ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"), True),
        (SKYLAKE_AVX512, "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", ("avx2", "avx512f"), False),  # oneDNN emulates
        (NEOVERSE_V1, None, ("bf16",), True),
        ("", None, (), None),  # no flags to read: unknown, so never a warning
    ],
)  # fmt: skip
def test_cpuinfo_text_gives_model_flags_and_native_bf16(text, model, flags, native):
    caps = hardware.capabilities_from_cpuinfo(text, onednn_bf16=True)
    assert caps.flags == flags and caps.native_bf16 is native and caps.onednn_bf16 is True
    if model is not None:
        assert caps.model == model
    assert caps.as_dict()["flags"] == list(flags) and caps.describe().startswith("CPU: ")


def _pretend_cpu(monkeypatch, native: bool) -> hardware.CpuCapabilities:
    """This process's CPU as seen by every caller (generate, the runner), and the once-per-process flag reset."""
    flags = ("avx2", "avx512f", "avx512_bf16") if native else ("avx2",)
    caps = hardware.CpuCapabilities("Test CPU 9000", flags, native, onednn_bf16=native)
    monkeypatch.setattr(hardware, "detect", lambda: caps)
    monkeypatch.setattr(hardware, "_warned", False)
    return caps


def _bf16_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "coca_bench.hardware" and r.levelno == logging.WARNING]


def test_bf16_decoding_without_native_bf16_warns_once_and_still_runs_in_bf16(
    tiny, images, sessions, monkeypatch, caplog
):
    _pretend_cpu(monkeypatch, native=False)
    caplog.set_level(logging.WARNING, logger="coca_bench.hardware")
    tiny.generate(images[:2], "greedy", max_new_tokens=6)
    assert _bf16_warnings(caplog) == []  # fp32 is never warned about
    tiny.generate(images[:2], "greedy", max_new_tokens=6, decode_dtype="bf16")
    tiny.generate(images[:2], "beam", num_beams=2, num_beam_groups=1, max_new_tokens=6, decode_dtype="bf16")
    (message,) = _bf16_warnings(caplog)
    assert "decode_dtype=bf16 will be slower than fp32 on this CPU (Test CPU 9000)" in message
    assert "no native bf16" in message and "\n" not in message
    assert [s.dtype for s in sessions] == [torch.float32, torch.bfloat16, torch.bfloat16]  # no silent fallback


def test_bf16_decoding_with_native_bf16_does_not_warn(tiny, images, monkeypatch, caplog):
    _pretend_cpu(monkeypatch, native=True)
    caplog.set_level(logging.WARNING, logger="coca_bench.hardware")
    tiny.generate(images[:2], "greedy", max_new_tokens=6, decode_dtype="bf16")
    assert _bf16_warnings(caplog) == []


@pytest.mark.parametrize("native", [False, True])
def test_precision_bf16_on_cpu_warns_only_without_native_bf16(monkeypatch, caplog, native):
    from coca_bench.runner import check_precision

    _pretend_cpu(monkeypatch, native)
    caplog.set_level(logging.WARNING, logger="coca_bench.hardware")
    check_precision("fp32", "cpu")
    check_precision("bf16", "cpu")
    check_precision("bf16", "cpu")
    expected = [] if native else ["--precision bf16 will be slower than fp32 on this CPU (Test CPU 9000)"]
    assert [m.split(":")[0] for m in _bf16_warnings(caplog)] == expected


@pytest.mark.usefixtures("clean_registry")
def test_a_bf16_caption_result_records_the_cpu_and_stays_labelled_bf16(tmp_path, minidata_root, monkeypatch, caplog):
    from coca_bench.model import load_model

    caps = _pretend_cpu(monkeypatch, native=False)
    caplog.set_level(logging.WARNING, logger="coca_bench.hardware")
    params = ["decode_dtype=bf16", "strategy=greedy", "max_new_tokens=6", "caption_batch_size=2"]
    record, _ = run_task(tmp_path, "coco_captioning", minidata_root, load_model("tiny-random-s0"), params, limit=4)
    assert record["run"]["cpu"] == caps.as_dict() and record["run"]["cpu"]["native_bf16"] is False
    assert record["config"]["params"]["decode_dtype"] == "bf16"
    assert record["config"]["extra"]["generation"]["decode_dtype"] == "bf16"
    assert len(_bf16_warnings(caplog)) == 1  # two decoding batches, one line
