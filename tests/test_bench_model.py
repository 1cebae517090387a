"""The benchmark's own arithmetic: interleaving, quiet-round filtering, paired ratios, decode-step bytes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import timing  # noqa: E402
from timing import Measurement, interleaved, paired_ratio  # noqa: E402


@pytest.fixture
def foreign_loads(monkeypatch):
    """Feed ``interleaved`` a scripted foreign load per timed call instead of reading /proc/stat."""
    loads: list[float] = []
    monkeypatch.setattr(timing.CpuClock, "foreign_cores", lambda self, later: loads.pop(0) if loads else 0.0)
    return loads


def test_interleaved_warms_up_once_then_alternates_order(foreign_loads):
    calls = []
    contenders = {"a": lambda: calls.append("a") or "A", "b": lambda: calls.append("b") or "B"}
    result = interleaved(contenders, repeats=3)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then ABBA rounds
    assert result["a"].outputs == ["A", "A", "A"] and len(result["b"].seconds) == 3


def test_interleaved_uses_cheap_warmups_when_given(foreign_loads):
    calls = []
    contenders = {"a": lambda: calls.append("a")}
    interleaved(contenders, repeats=1, warmups={"a": lambda: calls.append("warm")})
    assert calls == ["warm", "a"]


def test_noisy_round_is_rerun_and_left_out_of_statistics(foreign_loads):
    foreign_loads += [0.0, 1.5, 0.0, 0.0]  # round 1: the second call saw a busy neighbour
    result = interleaved({"a": lambda: None, "b": lambda: None}, repeats=1, extra_rounds=2)
    assert result["a"].quiet_rounds == [False, True]
    assert len(result["a"].seconds) == 2


def test_extra_rounds_stop_at_the_deadline(foreign_loads):
    foreign_loads += [2.0] * 10
    result = interleaved({"a": lambda: None}, repeats=1, extra_rounds=5, deadline=0.0)
    assert result["a"].quiet_rounds == [False]


def test_statistics_prefer_quiet_rounds_and_fall_back_to_all():
    slow = Measurement(seconds=[10.0, 2.0, 4.0], quiet_rounds=[False, True, True])
    fast = Measurement(seconds=[1.0, 1.0, 1.0], quiet_rounds=[False, True, True])
    assert slow.median == 3.0
    assert paired_ratio(slow, fast) == 3.0
    noisy = Measurement(seconds=[10.0, 2.0], quiet_rounds=[False, False])
    assert noisy.median == 6.0


def test_paired_ratio_is_taken_per_round_not_from_the_medians():
    a = Measurement(seconds=[2.0, 4.0, 100.0], quiet_rounds=[True] * 3)
    b = Measurement(seconds=[1.0, 50.0, 60.0], quiet_rounds=[True] * 3)
    assert paired_ratio(a, b) == pytest.approx(100.0 / 60.0)  # per-round ratios 2, 0.08, 1.67; medians give 0.08


def test_decode_step_bytes_counts_decoder_weights_once_and_skips_image_projections():
    import bench_model
    import torch

    from coca_bench.model import CoCa, from_network, get_preset

    torch.manual_seed(0)
    model = from_network(CoCa(get_preset("tiny")))
    cfg = model.config.text
    width, mlp = cfg.width, cfg.mlp_dim
    block = (
        2 * (2 * width)
        + (width * 3 * width + 3 * width)
        + (width * width + width)
        + (width * mlp + mlp)
        + (mlp * width + width)
    )
    # a cross block is a block whose fused qkv projection is replaced by a query projection (the key/value
    # projection and its norm run once per caption, on the image tokens)
    cross_per_step = block - (3 * width * width + 3 * width) + (width * width + width)
    image_tokens = model.decoder_image_tokens(torch.zeros(1, 3, 64, 64))
    parts = bench_model.decode_step_bytes(model, image_tokens)
    assert parts["text_layers"] == 4 * cfg.unimodal_layers * block
    assert parts["decoder_self_layers"] == 4 * cfg.multimodal_layers * block
    assert parts["decoder_cross_layers"] == 4 * cfg.multimodal_layers * cross_per_step
    assert parts["vocab_head"] == 4 * (2 * width + width * cfg.vocab_size)
    assert parts["image_keys_values"] == 4 * cfg.multimodal_layers * 2 * image_tokens.shape[1] * width
