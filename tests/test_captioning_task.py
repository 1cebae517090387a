"""coco_captioning / nocaps_captioning through the runner: re-scoring, open_clip parity, resampling aggregate."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_task

from coca_bench.registry import get_task

pytestmark = pytest.mark.usefixtures("clean_registry")


class ReferenceQuoter:
    """A captioner with known output: for each image it returns (a variant of) one of that image's references.

    It wraps the bundled tiny model for everything but ``generate``, so the task, the caption cache and the metrics
    run for real on captions whose scores are far from 0 and differ between images.
    """

    def __init__(self, minidata_root):
        from coca_bench.model import load_model

        self.inner = load_model("tiny-random-s0")
        self.fingerprint = "reference-quoter-v1"
        self.by_key: dict[float, str] = {}
        karpathy = json.loads((minidata_root / "coco" / "dataset_coco.json").read_text())["images"]
        from PIL import Image

        for index, image in enumerate(i for i in karpathy if i["split"] == "test"):
            path = minidata_root / "coco" / image["filepath"] / image["filename"]
            pixels = self.inner.preprocess(Image.open(path).convert("RGB"))
            words = image["sentences"][index % 5]["raw"].strip().rstrip(".").split()
            self.by_key[self._key(pixels)] = " ".join(words[: len(words) - index % 3])  # drop 0-2 words

    @staticmethod
    def _key(pixels: torch.Tensor) -> float:
        return round(float(pixels.double().sum()), 3)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, pixels, strategy="beam", prompt=None, **options):
        texts = [self.by_key[self._key(p)] for p in pixels]
        ids = self.inner.tokenizer(texts)
        return ids[:, : options.get("max_new_tokens", 29) + 1]


def test_stored_metrics_equal_pycocoevalcap_rescoring_of_the_stored_captions(tmp_path, minidata_root):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    record, samples = run_task(tmp_path, "coco_captioning", minidata_root, model=ReferenceQuoter(minidata_root))
    karpathy = json.loads((minidata_root / "coco" / "dataset_coco.json").read_text())["images"]
    refs = {str(i["cocoid"]): [s["raw"].strip() for s in i["sentences"]] for i in karpathy if i["split"] == "test"}
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({k: [{"caption": c} for c in refs[k]] for k in refs})
    res = tokenizer.tokenize({s["id"]: [{"caption": s["caption"]}] for s in samples})
    bleu, _ = Bleu(4).compute_score(gts, res)
    meteor = Meteor()
    metrics = record["metrics"]
    assert metrics["METEOR"] == pytest.approx(meteor.compute_score(gts, res)[0], abs=1e-12)
    assert [metrics[f"Bleu_{n}"] for n in range(1, 5)] == pytest.approx(bleu, abs=1e-12)
    assert metrics["ROUGE_L"] == pytest.approx(Rouge().compute_score(gts, res)[0], abs=1e-12)
    cider, per_image = Cider().compute_score(gts, res)
    assert metrics["CIDEr"] == pytest.approx(cider, abs=1e-12) and 0.5 < cider < 10
    assert [s["CIDEr"] for s in samples] == pytest.approx(list(per_image), abs=1e-12)
    assert "SPICE" not in metrics and "SPICE" in record["not_computed"]
    # The aggregate the bootstrap resamples with reproduces the stored corpus numbers from the records alone.
    recomputed = get_task("coco_captioning").aggregate(samples, record["config"]["params"])
    for name in ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr"):
        assert recomputed[name] == pytest.approx(metrics[name], abs=1e-12)
    assert sum(s["ROUGE_L"] for s in samples) / len(samples) == pytest.approx(metrics["ROUGE_L"], abs=1e-12)
    doubled = get_task("coco_captioning").aggregate([*samples, *samples[:3]], record["config"]["params"])
    assert doubled["CIDEr"] != pytest.approx(metrics["CIDEr"])  # a resample changes document frequencies


def test_nocaps_reports_domain_cider(tmp_path, minidata_root):
    record, samples = run_task(tmp_path, "nocaps_captioning", minidata_root, params=["max_new_tokens=8"],
                               model=ReferenceQuoter(minidata_root).inner)  # fmt: skip
    assert {s["domain"] for s in samples} == {"in-domain", "near-domain", "out-domain"}
    assert {"CIDEr_in", "CIDEr_near", "CIDEr_out", "CIDEr"} <= set(record["metrics"])
    assert record["config"]["extra"]["generation"]["max_new_tokens"] == 8


def test_captions_of_an_open_clip_checkpoint_equal_open_clip_generate(tiny_open_clip, minidata_root, tmp_path):
    from PIL import Image

    from coca_bench.model.config import PreprocessConfig
    from coca_bench.model.preprocess import build_preprocess
    from coca_bench.model.tokenizer import build_tokenizer
    from coca_bench.results import ResultStore
    from coca_bench.runner import RunConfig, run_suite
    from coca_bench.settings import RunSettings

    reference, weights = tiny_open_clip
    settings = RunSettings(device="cpu", num_workers=0, progress=False, cache_dir=tmp_path / "cache", limit=3)
    run_suite(RunConfig(tasks="coco_captioning", checkpoints=[f"ref=open_clip:coca_tiny_test:{weights}"],
                        data_root=minidata_root, output=tmp_path / "out", settings=settings))  # fmt: skip
    samples = ResultStore(tmp_path / "out").samples("ref", "coco_captioning")
    karpathy = json.loads((minidata_root / "coco" / "dataset_coco.json").read_text())["images"]
    test = [i for i in karpathy if i["split"] == "test"][:3]
    preprocess = build_preprocess(PreprocessConfig(image_size=64))
    pixels = torch.stack(
        [preprocess(Image.open(minidata_root / "coco" / i["filepath"] / i["filename"]).convert("RGB")) for i in test]
    )
    with torch.no_grad():
        expected = reference.generate(pixels)  # open_clip's defaults: beam 6 / 3 groups, seq_len 30, min_seq_len 5
    tokenizer = build_tokenizer("clip_bpe", 32)
    assert [s["caption"] for s in samples] == [tokenizer.decode(row) for row in expected]
    assert [s["id"] for s in samples] == [str(i["cocoid"]) for i in test]
    assert all(len(s["caption"].split()) >= 3 for s in samples)  # real multi-token captions, not empty strings
