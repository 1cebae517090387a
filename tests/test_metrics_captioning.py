"""Captioning metrics: hand-computed values, and agreement with pycocoevalcap's own scorers on the same input.

The Java steps (PTB tokenizer, METEOR) cost seconds per call, so one module-scoped fixture runs ``caption_metrics``
and pycocoevalcap's scorers once on a small corpus and the tests share the results. The CIDEr-D tests need no Java.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
import threading

import numpy as np
import pytest

from coca_bench.metrics import captioning
from coca_bench.metrics.captioning import (
    METRIC_NAMES,
    CaptionScores,
    CiderCorpus,
    JavaMissingError,
    caption_metrics,
    cider_d,
    nocaps_domain_cider,
    spice_unavailable_reason,
    tokenize_captions,
)

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="captioning metrics need Java (PTB tokenizer)")

# Raw captions: upper case and punctuation exercise the PTB tokenizer; image 103 has an empty prediction.
PREDICTIONS = {101: "A dog runs on the green grass.", 102: "Two cats, sleeping!", 103: ""}
REFERENCES = {
    101: ["A dog is running on grass.", "The dog runs across the lawn."],
    102: ["Two cats sleep on a sofa.", "Cats asleep on the couch."],
    103: ["A red car.", "A car parked on the street."],
}


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``caption_metrics`` and pycocoevalcap's COCOEvalCap steps, run once on the same corpus (SPICE jars hidden)."""
    if shutil.which("java") is None:
        pytest.skip("captioning metrics need Java (PTB tokenizer, METEOR)")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor import meteor as meteor_module
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    # pycocoevalcap run directly, step by step as COCOEvalCap.evaluate does.
    gts = PTBTokenizer().tokenize({k: [{"caption": c} for c in refs] for k, refs in REFERENCES.items()})
    res = PTBTokenizer().tokenize({k: [{"caption": c}] for k, c in PREDICTIONS.items()})
    # One METEOR JVM (~6 s to start) serves both runs; each EVAL request to it is scored independently.
    shared_meteor = Meteor()
    direct = {
        "bleu": Bleu(4).compute_score(gts, res, verbose=0)[0],
        "METEOR": shared_meteor.compute_score(gts, res)[0],
        "ROUGE_L": Rouge().compute_score(gts, res)[0],
        "cider": Cider().compute_score(gts, res),
    }
    absent = tmp_path_factory.mktemp("no_spice")
    with pytest.MonkeyPatch.context() as mp:
        # Whether or not this machine has the SPICE jars, the fixture sees none: SPICE must be reported, not run.
        mp.setattr(captioning, "_spice_jar_paths", lambda: [str(absent / "corenlp.jar"), str(absent / "models.jar")])
        mp.setattr(meteor_module, "Meteor", lambda: shared_meteor)
        result = caption_metrics(PREDICTIONS, REFERENCES)
        assert shared_meteor.meteor_p.poll() is None  # kept for the next call ...
    captioning._METEOR.stop()
    assert shared_meteor.meteor_p.poll() is not None  # ... until it is stopped (at exit, or here)
    return {"result": result, "gts": gts, "res": res, "direct": direct}


# --- caption_metrics ------------------------------------------------------------------------------------------------


def test_bleu_1_hand_computed(scored):
    # Tokenized: 101 "a dog runs on the green grass" (7 words; all but "green" occur in a reference: 6 correct),
    # reference lengths 6, 6 -> closest 6. 102 "two cats sleeping" (3 words; "two", "cats" correct: 2), reference
    # lengths 6, 5 -> closest 5. 103 "" (0 words), reference lengths 3, 6 -> closest 3.
    # Corpus: correct 8 of 10 guessed unigrams; test length 10 < reference length 14 -> brevity penalty
    # exp(1 - 14/10). BLEU-1 = 8/10 * exp(-0.4) = 0.53625603...
    expected = 0.8 * math.exp(1 - 14 / 10)
    assert scored["result"].scores["Bleu_1"] == pytest.approx(expected, rel=1e-8)


def test_tokenization_is_ptb_lowercase_without_punctuation(scored):
    result = scored["result"]
    assert result.tokenized_predictions == {101: "a dog runs on the green grass", 102: "two cats sleeping", 103: ""}
    assert result.tokenized_references[103] == ["a red car", "a car parked on the street"]
    # ... and identical to pycocoevalcap's own PTBTokenizer wrapper.
    assert result.tokenized_predictions == {k: v[0] for k, v in scored["res"].items()}
    assert result.tokenized_references == scored["gts"]


def test_caption_metrics_equal_pycocoevalcap_scorers(scored):
    result: CaptionScores = scored["result"]
    direct = scored["direct"]
    expected = {f"Bleu_{n + 1}": b for n, b in enumerate(direct["bleu"])}
    expected.update(METEOR=direct["METEOR"], ROUGE_L=direct["ROUGE_L"], CIDEr=direct["cider"][0])
    assert set(result.scores) == set(expected)
    for name, value in expected.items():
        assert result.scores[name] == pytest.approx(value, abs=1e-12), name
    assert result.per_image_cider == pytest.approx(dict(zip(scored["gts"], direct["cider"][1])), abs=1e-12)
    assert result.scores["CIDEr"] < 10  # pycocoevalcap's scale, not the papers' x100
    assert result.per_image_cider[103] == 0.0  # the empty prediction scores 0 rather than failing


def test_spice_is_reported_not_computed_when_its_jars_are_absent(scored):
    result = scored["result"]
    assert "SPICE" not in result.scores
    assert "3.6.0" in result.not_computed["SPICE"] and "missing" in result.not_computed["SPICE"]
    assert set(result.scores) | set(result.not_computed) == set(METRIC_NAMES)


def test_spice_jar_detection_looks_where_pycocoevalcap_does(monkeypatch, tmp_path):
    import pycocoevalcap.spice.spice as spice_module

    lib = os.path.join(os.path.dirname(os.path.abspath(spice_module.__file__)), "lib")
    main, models = (os.path.abspath(p) for p in captioning._spice_jar_paths())
    assert main == os.path.join(lib, "stanford-corenlp-3.6.0.jar")
    assert models == os.path.join(lib, "stanford-corenlp-3.6.0-models.jar")

    jars = [tmp_path / "corenlp.jar", tmp_path / "models.jar"]
    monkeypatch.setattr(captioning, "_spice_jar_paths", lambda: [str(p) for p in jars])
    jars[0].write_bytes(b"")
    assert "models.jar" in spice_unavailable_reason() and "corenlp.jar" not in spice_unavailable_reason()
    jars[1].write_bytes(b"")
    assert spice_unavailable_reason() is None


@needs_java
def test_one_meteor_jvm_serves_every_call_with_the_scores_of_a_fresh_one(monkeypatch):
    """Reusing METEOR's JVM (seconds to start) across calls must not change a score: each call equals pycocoevalcap's
    own Meteor started for that call alone, whatever was scored before."""
    from pycocoevalcap.meteor import meteor as meteor_module

    started = []

    class Counted(meteor_module.Meteor):
        def __init__(self) -> None:
            super().__init__()
            started.append(self)

    monkeypatch.setattr(meteor_module, "Meteor", Counted)
    other_predictions = {101: "a cat on a sofa", 102: "two dogs on the lawn", 103: "a red car on the street"}
    first = caption_metrics(PREDICTIONS, REFERENCES, spice=False).scores["METEOR"]
    second = caption_metrics(other_predictions, REFERENCES, spice=False)
    again = caption_metrics(PREDICTIONS, REFERENCES, spice=False).scores["METEOR"]
    assert len(started) == 1 and started[0].meteor_p.poll() is None
    assert again == first
    fresh = Counted()
    gts = second.tokenized_references
    res = {k: [v] for k, v in second.tokenized_predictions.items()}
    try:
        assert second.scores["METEOR"] == fresh.compute_score(gts, res)[0] != first
    finally:
        captioning._stop_meteor(fresh)
        captioning._METEOR.stop()
    assert started[0].meteor_p.poll() is not None


class _DyingMeteor:
    """A METEOR whose JVM fails its first request (as a JVM killed by the OOM killer would), then works."""

    instances: list[_DyingMeteor] = []

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.meteor_p = subprocess.Popen(["sleep", "60"])
        _DyingMeteor.instances.append(self)

    def compute_score(self, gts, res):
        if len(_DyingMeteor.instances) == 1:
            raise BrokenPipeError("METEOR's JVM is gone")
        return 0.25, [0.25] * len(gts)


@needs_java
def test_a_meteor_jvm_that_failed_is_stopped_and_replaced(monkeypatch):
    from pycocoevalcap.meteor import meteor as meteor_module

    monkeypatch.setattr(meteor_module, "Meteor", _DyingMeteor)
    _DyingMeteor.instances.clear()
    with pytest.raises(BrokenPipeError):
        caption_metrics(PREDICTIONS, REFERENCES, spice=False)
    assert _DyingMeteor.instances[0].meteor_p.poll() is not None  # stopped, never asked again
    assert caption_metrics(PREDICTIONS, REFERENCES, spice=False).scores["METEOR"] == 0.25
    assert len(_DyingMeteor.instances) == 2
    captioning._METEOR.stop()


class _StubMeteor:
    """Stands in for METEOR's 6-second JVM where a test is about SPICE handling, not about METEOR."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.meteor_p = subprocess.Popen(["true"])

    def compute_score(self, gts, res):
        return 0.5, [0.5] * len(gts)


class _FailingSpice:
    def __init__(self) -> None:
        pass

    def compute_score(self, gts, res):
        raise subprocess.CalledProcessError(1, ["java", "-jar", "spice-1.0.jar"])


@needs_java
@pytest.mark.parametrize("spice", [None, False, True])
def test_spice_that_fails_or_is_skipped_is_reported_never_a_number(spice, monkeypatch, tmp_path):
    from pycocoevalcap.meteor import meteor as meteor_module
    from pycocoevalcap.spice import spice as spice_module

    jars = [tmp_path / "corenlp.jar", tmp_path / "models.jar"]
    for jar in jars:
        jar.write_bytes(b"")  # the jars "exist", so SPICE is attempted, and then its JVM fails
    monkeypatch.setattr(captioning, "_spice_jar_paths", lambda: [str(p) for p in jars])
    monkeypatch.setattr(meteor_module, "Meteor", _StubMeteor)
    monkeypatch.setattr(spice_module, "Spice", _FailingSpice)
    if spice is True:
        with pytest.raises(RuntimeError, match="SPICE failed"):
            caption_metrics(PREDICTIONS, REFERENCES, spice=spice)
        return
    result = caption_metrics(PREDICTIONS, REFERENCES, spice=spice)
    assert "SPICE" not in result.scores and result.scores["METEOR"] == 0.5
    expected = "SPICE failed (CalledProcessError" if spice is None else "not requested"
    assert result.not_computed["SPICE"].startswith(expected)


def test_spice_required_but_unavailable_raises_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setattr(captioning, "_spice_jar_paths", lambda: [str(tmp_path / "absent.jar")])
    monkeypatch.setenv("PATH", str(tmp_path))  # it must fail on SPICE before it even looks for Java
    with pytest.raises(RuntimeError, match="spice=True"):
        caption_metrics(PREDICTIONS, REFERENCES, spice=True)


def test_java_missing_error_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no java anywhere on PATH
    with pytest.raises(JavaMissingError, match="default-jre-headless") as info:
        caption_metrics(PREDICTIONS, REFERENCES)
    assert isinstance(info.value, RuntimeError) and "METEOR" in str(info.value)
    monkeypatch.setattr(captioning.shutil, "which", lambda name: None)
    with pytest.raises(JavaMissingError, match="PTB tokenisation"):
        tokenize_captions({1: ["A caption."]})


@needs_java
def test_tokenize_turns_java_line_breaks_into_spaces_instead_of_shifting_captions():
    # pycocoevalcap's own wrapper would split "line\rbreak" into two lines and give "b" the caption "break".
    tokens = tokenize_captions({"a": ["Line\rbreak.", "X\u2028Y\x0cZ"], "b": ["Next one!"]})
    assert tokens == {"a": ["line break", "x y z"], "b": ["next one"]}


@needs_java
def test_references_that_tokenize_to_nothing_are_rejected():
    # pycocoevalcap's Cider would fail with "max() arg is an empty sequence" here.
    with pytest.raises(ValueError, match="empty after PTB tokenisation"):
        caption_metrics({1: "A dog."}, {1: ["...", "!"]})


@pytest.mark.parametrize(
    ("predictions", "references", "error", "match"),
    [
        ({1: "a"}, {2: ["a"]}, ValueError, "same image ids"),
        ({1: "a", 2: "b"}, {1: ["a"]}, ValueError, "same image ids"),
        ({1: "a"}, {1: []}, ValueError, "at least one reference"),
        ({1: None}, {1: ["a"]}, TypeError, "one caption string"),
        ({1: ["a"]}, {1: ["a"]}, TypeError, "one caption string"),
        ({1: "a"}, {1: "a dog"}, TypeError, "list of caption strings"),
        ({1: "a"}, {1: ["a", 3]}, TypeError, "only strings"),
        ({}, {}, ValueError, "no predictions"),
    ],
)
def test_caption_metrics_validates_inputs(predictions, references, error, match, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # validation comes first, so these fail the same way without Java
    with pytest.raises(error, match=match):
        caption_metrics(predictions, references)


# --- CIDEr-D --------------------------------------------------------------------------------------------------------


def test_cider_d_hand_computed_two_image_corpus():
    # Image A: prediction "dog dog runs", references "dog runs", "cat runs".  Image B: "cat sits" vs "cat sits".
    # N = 2 documents, so idf(g) = ln 2 - ln(max(1, df(g))), with df counted over each image's reference n-grams:
    #   "cat" is in both images' references -> df 2 -> idf 0; every other n-gram has df 1 (or 0 for "dog dog",
    #   which is in no reference) -> idf L = ln 2.
    # A's prediction vectors (tf * idf): 1-grams {dog: 2L, runs: L} (norm sqrt(5) L); 2-grams {dog dog: L,
    #   dog runs: L} (norm sqrt(2) L); 3-gram {dog dog runs: L}. Its length (pycocoevalcap counts bigrams) is 2.
    # vs "dog runs": 1-grams {dog: L, runs: L} (norm sqrt(2) L); clipped dot = min(2L, L) L + L L = 2 L^2, so
    #   cos1 = 2 / sqrt(10); 2-grams {dog runs: L}: cos2 = L^2 / (sqrt(2) L * L) = 1 / sqrt(2); no 3/4-grams: 0.
    #   Length 1 -> delta 1 -> penalty exp(-1 / 72).
    # vs "cat runs": 1-grams {cat: 0, runs: L} (norm L): cos1 = L^2 / (sqrt(5) L * L) = 1 / sqrt(5); 2-gram
    #   {cat runs: L} shares nothing: 0. Penalty exp(-1 / 72).
    # CIDEr-D(A) = 10 * (1 / 2 refs) * (1 / 4 n) * exp(-1/72) * (2/sqrt(10) + 1/sqrt(2) + 1/sqrt(5)).
    # B: 1-grams {cat: 0, sits: L}, 2-gram {cat sits: L} on both sides: cos1 = cos2 = 1, penalty 1:
    # CIDEr-D(B) = 10 * (1 + 1) / 4 = 5.
    cider_a = 10 / 2 / 4 * math.exp(-1 / 72) * (2 / math.sqrt(10) + 1 / math.sqrt(2) + 1 / math.sqrt(5))
    corpus, per_item = cider_d(["dog dog runs", "cat sits"], [["dog runs", "cat runs"], ["cat sits"]])
    assert per_item == pytest.approx([cider_a, 5.0], abs=1e-12)
    assert corpus == pytest.approx((cider_a + 5.0) / 2, abs=1e-12)


def _random_corpus(seed: int, size: int) -> tuple[list[str], list[list[str]]]:
    """Small-vocabulary captions so n-grams repeat across images; includes empty and repetitive captions."""
    rng = random.Random(seed)
    words = "a the dog dogs cat man on in with red runs sits grass street two of is playing".split()

    def sentence(shortest: int) -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(shortest, 12)))

    predictions = [sentence(0) for _ in range(size)]
    predictions[0], predictions[1] = "", "dog dog dog runs runs"
    references = [[sentence(1) for _ in range(rng.randint(1, 5))] for _ in range(size)]
    references[2].append("")  # an empty reference (e.g. a caption that was only punctuation)
    return predictions, references


def _pycocoevalcap_cider(predictions, references, indices) -> tuple[float, list[float]]:
    """pycocoevalcap's Cider on the resample, each position relabelled with its own key so duplicates survive."""
    from pycocoevalcap.cider.cider import Cider

    gts = {pos: list(references[i]) for pos, i in enumerate(indices)}
    res = {pos: [predictions[i]] for pos, i in enumerate(indices)}
    score, scores = Cider().compute_score(gts, res)
    return float(score), [float(s) for s in scores]


def test_cider_d_equals_pycocoevalcap():
    predictions, references = _random_corpus(seed=1, size=60)
    expected, expected_items = _pycocoevalcap_cider(predictions, references, range(60))
    score, items = cider_d(predictions, references)
    assert abs(score - expected) < 1e-9
    assert np.max(np.abs(np.array(items) - expected_items)) < 1e-9


def test_cider_corpus_equals_pycocoevalcap_on_resamples_with_duplicates():
    predictions, references = _random_corpus(seed=2, size=50)
    corpus = CiderCorpus(predictions, references)
    full_items = corpus.item_scores()
    rng = np.random.default_rng(0)
    for size in (1, 2, 17, 50, 120):
        indices = rng.integers(0, 50, size=size)
        if size == 2:
            indices = np.array([5, 5])  # one image twice: each copy is its own document
        expected, expected_items = _pycocoevalcap_cider(predictions, references, indices.tolist())
        assert abs(corpus.score(indices) - expected) < 1e-9, size
        assert np.max(np.abs(corpus.item_scores(indices) - expected_items)) < 1e-9, size
        assert cider_d([predictions[i] for i in indices], [references[i] for i in indices])[0] == pytest.approx(
            expected, abs=1e-9
        )
        if size in (17, 120):
            # The idf changes with the resample, so the corpus score is not the mean of the full-set item scores.
            assert abs(full_items[indices].mean() - expected) > 1e-6


def test_cider_corpus_validates_inputs():
    with pytest.raises(ValueError, match="equal length"):
        CiderCorpus(["a"], [["a"], ["b"]])
    with pytest.raises(ValueError, match="no captions"):
        CiderCorpus([], [])
    with pytest.raises(ValueError, match="non-empty list"):
        CiderCorpus(["a"], [[]])
    with pytest.raises(ValueError, match="non-empty list"):
        CiderCorpus(["a"], ["a dog"])
    corpus = CiderCorpus(["a", "b"], [["a"], ["b"]])
    with pytest.raises(IndexError, match=r"\[0, 2\)"):
        corpus.score([0, 2])
    with pytest.raises(ValueError, match="non-empty"):
        corpus.score([])
    with pytest.raises(TypeError, match="integer"):
        corpus.score([0.0, 1.0])


# --- NoCaps domains -------------------------------------------------------------------------------------------------


def test_nocaps_domains_score_each_subset_as_its_own_corpus():
    predictions, references = _random_corpus(seed=3, size=45)
    keys = [f"img{i}" for i in range(45)]
    domain_of = ["in-domain"] * 8 + ["near-domain"] * 25 + ["out-domain"] * 12
    result = nocaps_domain_cider(dict(zip(keys, predictions)), dict(zip(keys, references)), dict(zip(keys, domain_of)))
    assert list(result) == ["in-domain", "near-domain", "out-domain", "entire"]
    for domain in ("in-domain", "near-domain", "out-domain"):
        subset = [i for i, d in enumerate(domain_of) if d == domain]
        assert result[domain] == pytest.approx(_pycocoevalcap_cider(predictions, references, subset)[0], abs=1e-9)
    entire, entire_items = _pycocoevalcap_cider(predictions, references, range(45))
    assert result["entire"] == pytest.approx(entire, abs=1e-9)
    # Not the full-set per-image scores averaged within a domain (that would reuse the entire split's idf).
    assert abs(np.mean(entire_items[:8]) - result["in-domain"]) > 1e-6


def test_nocaps_domains_validate_labels_and_report_empty_domains_as_nan():
    predictions = {1: "a dog", 2: "a cat"}
    references = {1: ["a dog"], 2: ["a cat"]}
    result = nocaps_domain_cider(predictions, references, {1: "near-domain", 2: "near-domain"})
    assert math.isnan(result["in-domain"]) and math.isnan(result["out-domain"])
    with pytest.raises(ValueError, match="Unknown NoCaps domain"):
        nocaps_domain_cider(predictions, references, {1: "in_domain", 2: "near-domain"})
    with pytest.raises(ValueError, match="exactly the image ids"):
        nocaps_domain_cider(predictions, references, {1: "in-domain"})


def test_corpus_bleu_from_per_caption_statistics_equals_pycocoevalcap_on_resamples():
    """The bootstrap sums per-caption statistics instead of re-running Bleu on text: it must be the same number."""
    import random

    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.rouge.rouge import Rouge

    from coca_bench.metrics.captioning import bleu_statistics, corpus_bleu

    rng = random.Random(0)
    words = "a red blue square circle on the left right of small big triangle green".split()
    sentence = lambda: " ".join(rng.choice(words) for _ in range(rng.randint(2, 9)))  # noqa: E731
    items = [(sentence(), [sentence() for _ in range(rng.randint(1, 5))]) for _ in range(30)]
    stats = [bleu_statistics(p, r) for p, r in items]
    rouge = Rouge()
    for _ in range(5):
        sample = [rng.randrange(len(items)) for _ in range(len(items))]  # with repeats, as a resample has
        gts = {i: items[j][1] for i, j in enumerate(sample)}
        res = {i: [items[j][0]] for i, j in enumerate(sample)}
        expected, _ = Bleu(4).compute_score(gts, res, verbose=0)
        assert corpus_bleu([stats[j] for j in sample]) == pytest.approx(expected, abs=1e-12)
        rouge_corpus, _ = rouge.compute_score(gts, res)
        per_item = [rouge.calc_score([items[j][0]], items[j][1]) for j in sample]
        assert sum(per_item) / len(per_item) == pytest.approx(rouge_corpus, abs=1e-12)


def test_caption_resampler_equals_pycocoevalcap_on_every_resample_at_once():
    """The bootstrap's vectorised captioning metrics: BLEU, CIDEr-D and NoCaps domain CIDEr of a whole batch of
    resamples (repeats counted as documents, a domain absent from a resample NaN) equal pycocoevalcap's on each."""
    from pycocoevalcap.bleu.bleu import Bleu

    from coca_bench.metrics.captioning import bleu_statistics, caption_resampler

    predictions, references = _random_corpus(seed=4, size=24)
    domains = ["in-domain"] * 3 + ["near-domain"] * 15 + ["out-domain"] * 6
    samples = [
        {"caption_tokens": p, "reference_tokens": r, "bleu_statistics": bleu_statistics(p, r), "domain": d}
        for p, r, d in zip(predictions, references, domains)
    ]
    rng = np.random.default_rng(1)
    resamples = [rng.integers(0, 24, size=24) for _ in range(6)] + [np.array([5] * 12 + [20] * 12)]  # no in-domain
    counts = np.stack([np.bincount(row, minlength=24) for row in resamples]).astype(float)
    got = caption_resampler(samples)(counts)
    for r, row in enumerate(resamples):
        cider = _pycocoevalcap_cider(predictions, references, row.tolist())[0]
        assert got["CIDEr"][r] == pytest.approx(cider, abs=1e-9)
        gts = {i: references[j] for i, j in enumerate(row)}
        bleu, _ = Bleu(4).compute_score(gts, {i: [predictions[j]] for i, j in enumerate(row)}, verbose=0)
        assert [got[f"Bleu_{k}"][r] for k in range(1, 5)] == pytest.approx(bleu, abs=1e-12)
        for metric, domain in (("CIDEr_in", "in-domain"), ("CIDEr_near", "near-domain"), ("CIDEr_out", "out-domain")):
            subset = [j for j in row.tolist() if domains[j] == domain]
            expected = _pycocoevalcap_cider(predictions, references, subset)[0] if subset else math.nan
            assert got[metric][r] == pytest.approx(expected, abs=1e-9, nan_ok=True), (r, metric)
