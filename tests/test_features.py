import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from coca_bench import fingerprints
from coca_bench.cache import feature_cache_dir
from coca_bench.features import FeatureExtractionError, FeatureExtractor
from coca_bench.settings import RunSettings

DIM = 4
_IMAGE_PROJECTION = torch.tensor(np.random.default_rng(0).normal(size=(3, DIM)), dtype=torch.float32)
_TEXT_PROJECTION = torch.tensor(np.random.default_rng(1).normal(size=(16, DIM)), dtype=torch.float32)


def _to_pixels(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.resize((8, 8)), dtype=np.float32) / 255.0).permute(2, 0, 1)


def _tokenize(texts: list[str]) -> torch.Tensor:
    ids = torch.zeros(len(texts), 16, dtype=torch.long)
    for row, text in enumerate(texts):
        codes = list(text.encode("utf-8"))[:16]
        ids[row, : len(codes)] = torch.tensor(codes)
    return ids


class FakeModel:
    """The model-handle API the feature extractor relies on, deterministic, counting encoded items."""

    def __init__(
        self, fingerprint: str = "model-a", preprocess_fingerprint: str = "pre-a", fail_after_images: int | None = None
    ):
        self.name = "fake"
        self.spec = "fake"
        self.weights_sha256 = "0" * 64
        self.fingerprint = fingerprint
        self.preprocess_fingerprint = preprocess_fingerprint
        self.preprocess = _to_pixels
        self.tokenizer = _tokenize
        self.device = "cpu"
        self.images_encoded = 0
        self.texts_encoded = 0
        self.fail_after_images = fail_after_images

    def encode_image(self, pixels: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        if self.fail_after_images is not None and self.images_encoded >= self.fail_after_images:
            raise KeyboardInterrupt  # an interrupted run
        self.images_encoded += len(pixels)
        out = pixels.mean(dim=(2, 3)) @ _IMAGE_PROJECTION + 0.01
        return torch.nn.functional.normalize(out, dim=-1) if normalize else out

    def image_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        self.images_encoded += len(pixels)
        return pixels.flatten(2).transpose(1, 2)[:, :5, :] * 3.0  # [B, 5 tokens, 3 channels]

    def encode_text(self, ids: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        self.texts_encoded += len(ids)
        out = ids.float() @ _TEXT_PROJECTION + 0.01
        return torch.nn.functional.normalize(out, dim=-1) if normalize else out

    def autocast(self, precision: str):
        return contextlib.nullcontext()


@dataclass(frozen=True)
class Sample:
    id: str
    path: Path


def make_images(folder: Path, count: int) -> list[Sample]:
    folder.mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(count):
        path = folder / f"img{i}.png"
        Image.new("RGB", (10, 10), color=(20 * i % 256, 255 - 30 * i % 256, 7 * i % 256)).save(path)
        samples.append(Sample(f"s{i}", path))
    return samples


def extractor(model: FakeModel, cache: Path | None, chunk_size: int = 3, **settings) -> FeatureExtractor:
    settings = {"batch_size": 2, "num_workers": 0, "progress": False, "device": "cpu", **settings}
    return FeatureExtractor(model, cache, RunSettings(**settings), chunk_size=chunk_size)


def test_second_run_hits_the_cache_without_calling_the_model(tmp_path):
    samples = make_images(tmp_path / "img", 7)
    first = extractor(FakeModel(), tmp_path / "cache").embed_images(samples)
    assert first.vectors.shape == (7, DIM) and first.ids == [s.id for s in samples]

    model = FakeModel()
    again = extractor(model, tmp_path / "cache").embed_images(samples)
    assert model.images_encoded == 0
    np.testing.assert_array_equal(again.vectors, first.vectors)
    assert again.ids == first.ids


def test_rows_follow_input_order_and_match_direct_encoding(tmp_path):
    samples = make_images(tmp_path / "img", 5)
    features = extractor(FakeModel(), tmp_path / "cache").embed_images(samples).vectors
    model = FakeModel()
    direct = model.encode_image(torch.stack([_to_pixels(Image.open(s.path).convert("RGB")) for s in samples]))
    np.testing.assert_allclose(features, direct.numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "change",
    [
        {"fingerprint": "model-b"},
        {"preprocess_fingerprint": "pre-b"},
        {"precision": "bf16"},
    ],
    ids=["model fingerprint", "preprocess fingerprint", "precision"],
)
def test_changing_a_key_input_misses(tmp_path, change):
    samples = make_images(tmp_path / "img", 4)
    extractor(FakeModel(), tmp_path / "cache").embed_images(samples)
    precision = change.pop("precision", "fp32")
    model = FakeModel(**change)
    extractor(model, tmp_path / "cache", precision=precision).embed_images(samples)
    assert model.images_encoded == 4


def test_changing_a_files_bytes_misses_only_its_chunk(tmp_path):
    samples = make_images(tmp_path / "img", 6)  # chunks: [0,1,2] [3,4,5]
    extractor(FakeModel(), tmp_path / "cache").embed_images(samples)
    Image.new("RGB", (10, 10), color=(1, 2, 3)).save(samples[4].path)
    model = FakeModel()
    result = extractor(model, tmp_path / "cache").embed_images(samples)
    assert model.images_encoded == 3
    fresh = extractor(FakeModel(), None).embed_images(samples)  # no cache: ground truth
    np.testing.assert_allclose(result.vectors, fresh.vectors, atol=1e-6)


def test_same_bytes_under_another_path_hit(tmp_path):
    samples = make_images(tmp_path / "a", 3)
    extractor(FakeModel(), tmp_path / "cache").embed_images(samples)
    copies = []
    for s in samples:
        target = tmp_path / "b" / s.path.name
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(s.path.read_bytes())
        copies.append(Sample("copy-" + s.id, target))
    model = FakeModel()
    result = extractor(model, tmp_path / "cache").embed_images(copies)
    assert model.images_encoded == 0 and result.ids == [c.id for c in copies]


def test_text_cache_hits_and_a_changed_text_misses(tmp_path):
    texts = ["a photo of a cat.", "a photo of a dog.", "a bird", "a fish"]
    first = extractor(FakeModel(), tmp_path / "cache").embed_texts(texts)
    assert first.shape == (4, DIM)

    model = FakeModel()
    np.testing.assert_array_equal(extractor(model, tmp_path / "cache").embed_texts(texts), first)
    assert model.texts_encoded == 0

    model = FakeModel()
    extractor(model, tmp_path / "cache").embed_texts(texts[:3] + ["a fish!"])
    assert model.texts_encoded == 1  # chunk_size 3: only the last chunk holds the changed text


def test_unreadable_image_is_a_skip_and_the_cached_chunk_reproduces_it(tmp_path):
    samples = make_images(tmp_path / "img", 4)
    samples[1].path.write_bytes(b"not an image")
    samples.append(Sample("missing", tmp_path / "img" / "nope.png"))
    result = extractor(FakeModel(), tmp_path / "cache").embed_images(samples)
    assert result.ids == ["s0", "s2", "s3"]
    assert [s.sample_id for s in result.skipped] == ["s1", "missing"]
    assert all(s.reason.startswith("unreadable image") for s in result.skipped)
    assert result.vectors.shape == (3, DIM)

    model = FakeModel()
    again = extractor(model, tmp_path / "cache").embed_images(samples)
    assert model.images_encoded == 0
    assert [(s.sample_id, s.reason) for s in again.skipped] == [(s.sample_id, s.reason) for s in result.skipped]


def test_strict_makes_an_unreadable_image_fatal_naming_the_file_even_from_cache(tmp_path):
    samples = make_images(tmp_path / "img", 3)
    samples[2].path.write_bytes(b"garbage")
    with pytest.raises(FeatureExtractionError, match=r"img2\.png"):
        extractor(FakeModel(), tmp_path / "cache", strict=True).embed_images(samples)
    with pytest.raises(FeatureExtractionError, match=r"img2\.png"):  # now the chunk is cached
        extractor(FakeModel(), tmp_path / "cache", strict=True).embed_images(samples)


def test_interrupted_run_keeps_finished_chunks(tmp_path):
    samples = make_images(tmp_path / "img", 9)  # chunks of 3, batches of 2
    with pytest.raises(KeyboardInterrupt):
        extractor(FakeModel(fail_after_images=4), tmp_path / "cache").embed_images(samples)
    model = FakeModel()
    extractor(model, tmp_path / "cache").embed_images(samples)
    assert model.images_encoded == 6  # the first chunk survived the interruption


def test_damaged_chunk_file_is_a_miss_not_an_error(tmp_path):
    samples = make_images(tmp_path / "img", 3)
    extractor(FakeModel(), tmp_path / "cache").embed_images(samples)
    (chunk,) = (tmp_path / "cache").rglob("*.npz")
    chunk.write_bytes(b"truncated")
    model = FakeModel()
    extractor(model, tmp_path / "cache").embed_images(samples)
    assert model.images_encoded == 3


def test_worker_processes_give_the_same_features(tmp_path):
    samples = make_images(tmp_path / "img", 4)
    in_process = extractor(FakeModel(), None).embed_images(samples)
    with_workers = extractor(FakeModel(), None, num_workers=1).embed_images(samples)
    np.testing.assert_array_equal(in_process.vectors, with_workers.vectors)


def test_nan_features_are_refused_not_cached_with_advice_that_fits_the_precision(tmp_path):
    model = FakeModel()
    model.encode_text = lambda ids, normalize=True: torch.full((len(ids), DIM), float("nan"))
    with pytest.raises(FeatureExtractionError, match="at precision fp32; check checkpoint") as fp32:
        extractor(model, tmp_path / "cache").embed_texts(["x"])
    assert "rerun with --precision fp32" not in str(fp32.value)  # fp32 already: the weights are the suspect
    with pytest.raises(FeatureExtractionError, match="at precision bf16; rerun with --precision fp32"):
        extractor(model, tmp_path / "cache", precision="bf16").embed_texts(["x"])
    assert not list((tmp_path / "cache").rglob("*.npz"))


def test_feature_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COCA_BENCH_CACHE", str(tmp_path))
    assert feature_cache_dir() == tmp_path / "features"
    monkeypatch.delenv("COCA_BENCH_CACHE")
    assert feature_cache_dir() == Path.home() / ".cache" / "coca_bench" / "features"


def test_a_change_of_model_code_or_library_versions_misses(tmp_path, monkeypatch):
    """The key used to cover weights, config, tokenizer, preprocess and precision, but not the code computing them."""
    samples = make_images(tmp_path / "img", 4)
    extractor(FakeModel(), tmp_path / "cache").embed_images(samples)
    monkeypatch.setattr(fingerprints, "feature_code_fingerprint", lambda: "edited model code or torch upgrade")
    model = FakeModel()
    extractor(model, tmp_path / "cache").embed_images(samples)
    assert model.images_encoded == 4


def test_force_recomputes_cached_features_once_per_run(tmp_path):
    samples = make_images(tmp_path / "img", 4)
    extractor(FakeModel(), tmp_path / "cache").embed_images(samples)
    model = FakeModel()
    forced = extractor(model, tmp_path / "cache", force=True)
    forced.embed_images(samples)
    assert model.images_encoded == 4  # stored features are not served under --force
    forced.embed_images(samples)
    assert model.images_encoded == 4  # but a second task of the same run reuses what this run computed


def test_skips_are_gathered_for_the_runner(tmp_path):
    samples = make_images(tmp_path / "img", 3)
    samples[0].path.write_bytes(b"not an image")
    features = extractor(FakeModel(), tmp_path / "cache")
    features.embed_images(samples)
    features.embed_images(samples)
    assert [s.sample_id for s in features.skipped] == ["s0"]


def test_encoder_tokens_are_cached_in_fp16_under_their_own_key(tmp_path):
    samples = make_images(tmp_path / "img", 4)
    samples[2].path.write_bytes(b"broken")
    tokens = extractor(FakeModel(), tmp_path / "cache").image_tokens(samples)
    assert tokens.vectors.shape == (3, 5, 3) and tokens.vectors.dtype == np.float16
    assert tokens.ids == ["s0", "s1", "s3"] and [s.sample_id for s in tokens.skipped] == ["s2"]
    direct = FakeModel().image_tokens(torch.stack([_to_pixels(Image.open(samples[0].path).convert("RGB"))]))
    np.testing.assert_allclose(tokens.vectors[0], direct[0].numpy(), rtol=1e-3)

    model = FakeModel()
    again = extractor(model, tmp_path / "cache").image_tokens(samples)  # a second probe setting: no re-encoding
    assert model.images_encoded == 0
    np.testing.assert_array_equal(again.vectors, tokens.vectors)
    full = extractor(model, tmp_path / "cache").image_tokens(samples, storage="fp32")
    assert model.images_encoded == 3 and full.vectors.dtype == np.float32
    extractor(model, tmp_path / "cache").embed_images(samples)  # embeddings are another kind, with their own chunks
    assert model.images_encoded == 6


def test_captions_are_generated_once_cached_per_generation_setting_and_resume_by_chunk(tmp_path):
    from coca_bench.model import load_model

    model = load_model("tiny-random-s0")
    calls: list[int] = []
    original = model.generate
    model.generate = lambda pixels, **options: calls.append(len(pixels)) or original(pixels, **options)
    samples = make_images(tmp_path / "img", 5)
    greedy = {"strategy": "greedy", "max_new_tokens": 6, "min_new_tokens": 1}
    first = extractor(model, tmp_path / "cache", chunk_size=2).captions(samples, greedy, batch_size=4)
    assert sum(calls) == 5 and first.token_ids.shape == (5, 7) and first.ids == [s.id for s in samples]
    pixels = torch.stack([model.preprocess(Image.open(s.path).convert("RGB")) for s in samples])
    direct = model.tokenizer.batch_decode(original(pixels, **greedy))
    assert first.texts == direct  # the cached path decodes exactly what the model's own caption() says

    calls.clear()
    again = extractor(model, tmp_path / "cache", chunk_size=2).captions(samples, greedy, batch_size=4)
    assert calls == [] and again.texts == first.texts
    extractor(model, tmp_path / "cache", chunk_size=2).captions(samples, {**greedy, "max_new_tokens": 5})
    assert sum(calls) == 5  # another generation setting is another key

    calls.clear()
    chunks = sorted((tmp_path / "cache" / "caption").rglob("*.npz"), key=lambda p: p.stat().st_mtime_ns)
    chunks[-1].unlink()  # as if interrupted before the last chunk was written
    extractor(model, tmp_path / "cache", chunk_size=2).captions(samples, {**greedy, "max_new_tokens": 5})
    assert 0 < sum(calls) < 5  # only the missing chunk is generated again


_PLUGIN_KIND = """
from coca_bench.features import feature_kind


@feature_kind
def scaled_pixel_means(features, samples):
    encode = lambda pixels, _: pixels.mean(dim=(2, 3)).numpy() * {scale}
    return features.from_images("scaled_pixel_mean", {{}}, samples, encode)
"""


def test_a_kind_registered_by_a_plugin_has_its_code_in_its_key(tmp_path):
    """The package's code is in every key through the feature code fingerprint; a plugin's kind adds its own file."""
    import importlib.util

    from coca_bench.features import FEATURE_KINDS

    source, samples = tmp_path / "plugin_kind.py", make_images(tmp_path / "img", 3)

    def run(scale: str) -> tuple[np.ndarray, int]:
        source.write_text(_PLUGIN_KIND.format(scale=scale))
        spec = importlib.util.spec_from_file_location("plugin_kind", source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # a second import of the same file replaces its own registration
        features = extractor(FakeModel(), tmp_path / "cache", chunk_size=3)
        return module.scaled_pixel_means(features, samples).vectors, features.stats.chunks_from_cache

    try:
        first, _ = run("1.0")
        again, hits = run("1.0")
        assert hits == 1 and np.array_equal(again, first)
        edited, hits = run("2.50")  # an edit of the kind's code: another key, computed afresh
        assert hits == 0
        np.testing.assert_allclose(edited, first * 2.5, rtol=1e-6)
    finally:
        FEATURE_KINDS.pop("scaled_pixel_means", None)


def test_two_kinds_under_one_name_are_refused_naming_both():
    from coca_bench.features import FeatureExtractor, FeatureKindError, feature_kind

    with pytest.raises(FeatureKindError, match="embed_images.*registered twice"):

        @feature_kind
        def embed_images(features, samples):
            return FeatureExtractor.embed_images(features, samples)
