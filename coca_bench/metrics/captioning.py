"""Captioning metrics: the COCO caption protocol of pycocoevalcap, plus an exact, fast CIDEr-D for the bootstrap.

Conventions, chosen so that every number here is the number pycocoevalcap's ``COCOEvalCap`` would print:
- Text goes through pycocoevalcap's own Stanford PTBTokenizer jar with its flags (``-preserveLines -lowerCase``)
  and its punctuation list, then every scorer sees the tokenized text, as ``COCOEvalCap.evaluate`` does.
  One deliberate difference: characters that the Java tokenizer treats as line breaks (``\\r``, ``\\v``, ``\\f``,
  U+2028, U+2029) become spaces, like ``\\n`` already does in pycocoevalcap. pycocoevalcap leaves them in, and then
  each one shifts every later caption onto the wrong image without any error.
- Scores keep pycocoevalcap's names (``Bleu_1`` .. ``Bleu_4``, ``METEOR``, ``ROUGE_L``, ``CIDEr``, ``SPICE``) and
  scale: fractions, and CIDEr about 1.x for a good model (papers print 100x, e.g. 1.436 -> 143.6).
- CIDEr-D's document frequencies come from the references of the images being scored, so a score depends on
  which images are in the set: a subset, a domain or a bootstrap resample gets its own idf, and a corpus score is
  not the mean of per-image scores taken from a different set. ``CiderCorpus`` recomputes the idf for every set.
- SPICE runs only when the Stanford CoreNLP 3.6.0 jars are already where pycocoevalcap's SPICE looks for them.
  Otherwise it is listed in ``CaptionScores.not_computed`` with the reason; it is never downloaded, never guessed.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from coca_bench.errors import CocaBenchError
from coca_bench.metrics.resampling import Resampler, summing_matrix

K = TypeVar("K", bound=Hashable)

METRIC_NAMES = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
NOCAPS_DOMAINS = ("in-domain", "near-domain", "out-domain")
CIDER_N = 4  # n-grams of length 1..4, as pycocoevalcap's Cider()
CIDER_SIGMA = 6.0  # standard deviation of the Gaussian length penalty, as pycocoevalcap's Cider()
_CIDER_BLOCK_VALUES = 2**21  # multisets per block x (n-grams or sums): temporaries of a few tens of MiB

# Characters the PTBTokenizer jar (run with -preserveLines) ends a line at, besides "\n" (which pycocoevalcap already
# replaces by a space). Found by running the jar: each of these split one caption into two output lines.
_JAVA_LINE_BREAKS = str.maketrans({c: " " for c in "\r\x0b\x0c\u2028\u2029"})


class JavaMissingError(CocaBenchError, RuntimeError):
    """Raised when no ``java`` executable is on PATH; PTB tokenisation, METEOR and SPICE all run on Java."""


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise JavaMissingError(
            "Captioning metrics need Java for PTB tokenisation and METEOR, and no `java` is on PATH; install a JRE, "
            "e.g. `apt-get install default-jre-headless` (Debian/Ubuntu)."
        )
    return java


def _ptb_tokenize(sentences: Sequence[str]) -> list[str]:
    """pycocoevalcap's PTBTokenizer on a flat list of sentences, one output per input, order kept.

    Same jar, flags and punctuation filter as ``pycocoevalcap.tokenizer.ptbtokenizer.PTBTokenizer``; the jar is
    run here rather than through that class so that its input file goes to the system temp folder (not into
    site-packages, which may be read-only) and so that a line-count mismatch raises instead of silently shifting
    captions between images.
    """
    from pycocoevalcap.tokenizer import ptbtokenizer

    java = _java()
    if not sentences:
        return []
    jar = os.path.join(os.path.dirname(os.path.abspath(ptbtokenizer.__file__)), ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR)
    text = "\n".join(s.replace("\n", " ").translate(_JAVA_LINE_BREAKS) for s in sentences)
    fd, path = tempfile.mkstemp(prefix="coca_bench_ptb_", suffix=".txt")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode())
        cmd = [java, "-cp", jar, "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", path]
        proc = subprocess.run(cmd, capture_output=True, check=False)
    finally:
        os.remove(path)
    if proc.returncode != 0:
        raise RuntimeError(
            f"The PTB tokenizer (Java) failed with exit code {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace').strip()[-500:]}; check the Java installation."
        )
    lines = proc.stdout.decode().split("\n")
    if len(lines) < len(sentences) or any(line.strip() for line in lines[len(sentences) :]):
        raise RuntimeError(
            f"The PTB tokenizer returned {len(lines)} lines for {len(sentences)} captions, so captions would be "
            "matched to the wrong images; report the captions that contain unusual control characters."
        )
    punctuation = set(ptbtokenizer.PUNCTUATIONS)
    return [" ".join(w for w in line.rstrip().split(" ") if w not in punctuation) for line in lines[: len(sentences)]]


def tokenize_captions(captions: Mapping[K, Sequence[str]]) -> dict[K, list[str]]:
    """PTB-tokenize every caption exactly as pycocoevalcap's ``COCOEvalCap`` does (lower case, punctuation removed).

    One Java call for the whole mapping; keys and caption order are kept.
    """
    keys = list(captions)
    for key in keys:
        value = captions[key]
        if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(c, str) for c in value):
            raise TypeError(f"captions[{key!r}] must be a list of strings; got {captions[key]!r}.")
    tokens = iter(_ptb_tokenize([c for key in keys for c in captions[key]]))
    return {key: [next(tokens) for _ in captions[key]] for key in keys}


@dataclass(frozen=True)
class CaptionScores:
    """Corpus scores under pycocoevalcap's names and scale, and what is needed to recompute CIDEr without Java.

    ``scores`` holds every metric that was computed; each metric that was not (SPICE without its jars) is in
    ``not_computed`` with the reason instead, so a missing number is never mistaken for a zero.
    """

    scores: dict[str, float]
    not_computed: dict[str, str]
    per_image_cider: dict[Any, float]
    tokenized_predictions: dict[Any, str]
    tokenized_references: dict[Any, list[str]]


def _check_captions(predictions: Mapping[K, str], references: Mapping[K, Sequence[str]]) -> list[K]:
    if not isinstance(predictions, Mapping) or not isinstance(references, Mapping):
        raise TypeError("predictions and references must be mappings from image id to caption(s).")
    if not predictions:
        raise ValueError("There are no predictions to score; check the dataset and --limit.")
    missing = [k for k in predictions if k not in references]
    extra = [k for k in references if k not in predictions]
    if missing or extra:
        raise ValueError(
            f"predictions and references must cover the same image ids; {len(missing)} predicted ids have no "
            f"references (e.g. {missing[:3]}) and {len(extra)} referenced ids have no prediction (e.g. {extra[:3]})."
        )
    for key, caption in predictions.items():
        if not isinstance(caption, str):
            raise TypeError(f"predictions[{key!r}] must be one caption string; got {type(caption).__name__}.")
    for key, refs in references.items():
        if isinstance(refs, str) or not isinstance(refs, Sequence):
            raise TypeError(f"references[{key!r}] must be a list of caption strings; got {type(refs).__name__}.")
        if len(refs) == 0:
            raise ValueError(f"references[{key!r}] is empty; every image needs at least one reference caption.")
        if not all(isinstance(r, str) for r in refs):
            raise TypeError(f"references[{key!r}] must contain only strings; got {refs!r}.")
    return list(predictions)


def _spice_jar_paths() -> list[str]:
    """The Stanford CoreNLP 3.6.0 jars that pycocoevalcap's SPICE needs, at the paths where it looks for them."""
    from pycocoevalcap.spice import get_stanford_models as gsm

    base = os.path.join(gsm.SPICEDIR, gsm.SPICELIB, gsm.JAR)
    return [f"{base}.jar", f"{base}-models.jar"]


def spice_unavailable_reason() -> str | None:
    """Why SPICE cannot run here (its CoreNLP jars are missing), or None when it can; never triggers a download."""
    missing = [p for p in _spice_jar_paths() if not os.path.isfile(p)]
    if missing:
        return (
            f"SPICE needs Stanford CoreNLP 3.6.0, which is not installed ({', '.join(missing)} missing); "
            "run `python -m pycocoevalcap.spice.get_stanford_models` once with network access to add it."
        )
    return None


def _stop_meteor(meteor: Any) -> None:
    """Stop METEOR's JVM now. pycocoevalcap stops it only in ``__del__``, which takes the scorer's lock and so would
    hang forever after a failed ``compute_score`` that left the lock held."""
    if meteor.lock.locked():
        meteor.lock.release()
    meteor.meteor_p.kill()
    meteor.meteor_p.wait()


class _SharedMeteor:
    """One METEOR JVM per process, reused by every scoring call: starting it (loading its paraphrase tables) takes
    seconds, 70% of a small captioning task, while each ``EVAL`` request is scored on its own statistics alone, so
    reuse cannot change a score (``tests/test_metrics_captioning.py`` checks it). A JVM that failed a request is
    stopped and replaced; the last one is stopped when the process exits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scorer: Any = None
        self._factory: Any = None

    def start(self) -> None:
        """Have a live JVM (started now if needed, so that it loads while the tokenizer runs)."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        from pycocoevalcap.meteor import meteor as meteor_module

        factory = meteor_module.Meteor  # looked up each time, so a stand-in (tests) gets a JVM of its own
        if self._scorer is None or self._factory is not factory or self._scorer.meteor_p.poll() is not None:
            self._stop()
            self._scorer, self._factory = factory(), factory

    def score(self, gts: dict, res: dict) -> float:
        with self._lock:
            self._start()
            try:
                return float(self._scorer.compute_score(gts, res)[0])
            except BaseException:
                self._stop()  # a JVM in an unknown state is never asked again
                raise

    def _stop(self) -> None:
        if self._scorer is not None:
            _stop_meteor(self._scorer)
            self._scorer = self._factory = None

    def stop(self) -> None:
        with self._lock:
            self._stop()


_METEOR = _SharedMeteor()
atexit.register(_METEOR.stop)


def caption_metrics(
    predictions: Mapping[K, str], references: Mapping[K, Sequence[str]], *, spice: bool | None = None
) -> CaptionScores:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr(-D) and, when possible, SPICE over the whole set, as ``COCOEvalCap``.

    ``predictions`` maps each image id to one generated caption (an empty string is allowed and scores 0);
    ``references`` maps the same ids to their non-empty lists of reference captions. ``spice``: None runs SPICE
    when its jars are present and otherwise lists it under ``not_computed``; False skips it; True requires it and
    raises when it cannot run.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    keys = _check_captions(predictions, references)
    if spice is True and (reason := spice_unavailable_reason()) is not None:
        raise RuntimeError(f"SPICE was required (spice=True) but cannot be computed: {reason}")
    _java()
    _METEOR.start()  # a first call starts the JVM now, so METEOR's paraphrase tables load while the tokenizer runs
    # Scorers get positions 0..n-1 as keys (any hashable id works, and SPICE's JSON round trip keeps ints); one
    # tokenizer call covers references and predictions, equivalent since each line is tokenized alone.
    tokens = iter(_ptb_tokenize([c for k in keys for c in references[k]] + [predictions[k] for k in keys]))
    gts = {i: [next(tokens) for _ in references[k]] for i, k in enumerate(keys)}
    res = {i: [next(tokens)] for i in range(len(keys))}
    if not any(ref for refs in gts.values() for ref in refs):
        raise ValueError(
            "Every reference caption is empty after PTB tokenisation (which drops punctuation), so nothing can "
            "be scored; check the reference captions."
        )
    scores: dict[str, float] = {}
    not_computed: dict[str, str] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores.update({f"Bleu_{n + 1}": float(b) for n, b in enumerate(bleu)})
    scores["METEOR"] = _METEOR.score(gts, res)
    scores["ROUGE_L"] = float(Rouge().compute_score(gts, res)[0])
    cider, per_image = Cider().compute_score(gts, res)
    scores["CIDEr"] = float(cider)

    reason = "not requested (spice=False)." if spice is False else spice_unavailable_reason()
    if reason is None:
        try:
            from pycocoevalcap.spice.spice import Spice

            scores["SPICE"] = float(Spice().compute_score(gts, res)[0])
        except Exception as exc:  # SPICE is optional: its failure (e.g. an old jar on a new JVM) must not lose the rest
            reason = f"SPICE failed ({type(exc).__name__}: {exc})."
    if reason is not None:
        if spice is True:
            raise RuntimeError(f"SPICE was required (spice=True) but cannot be computed: {reason}")
        not_computed["SPICE"] = reason

    return CaptionScores(
        scores=scores,
        not_computed=not_computed,
        per_image_cider={k: float(per_image[i]) for i, k in enumerate(keys)},
        tokenized_predictions={k: res[i][0] for i, k in enumerate(keys)},
        tokenized_references={k: gts[i] for i, k in enumerate(keys)},
    )


def _ngram_counts(sentence: str) -> Counter[tuple[str, ...]]:
    """All 1..4-grams of a whitespace-split sentence with their counts (pycocoevalcap's ``precook``)."""
    words = sentence.split()
    return Counter(tuple(words[i : i + k]) for k in range(1, CIDER_N + 1) for i in range(len(words) - k + 1))


class CiderCorpus:
    """pycocoevalcap's CIDEr-D for any multiset of items, e.g. bootstrap resamples, to within float rounding.

    Items are positions: item i is ``tokenized_predictions[i]`` scored against ``tokenized_references[i]``. A
    resample that repeats an item scores it as that many separate documents (in the document frequencies, in
    log(number of documents) and in the mean), which is what pycocoevalcap computes when the duplicates are given
    distinct keys. The n-gram statistics are counted once here; each ``score`` is then a few vectorised passes.

    Every quantity pycocoevalcap needs is linear in w(g) = idf(g)^2, because idf >= 0 (a document frequency never
    exceeds the number of documents): the clipped product min(tf_h idf, tf_r idf) tf_r idf equals
    min(tf_h, tf_r) tf_r w, and the squared norms are sums of tf^2 w. So the per-item numerators and norms are
    weighted sums over precomputed (row, n-gram, coefficient) triplets, evaluated with one gather and one segmented
    sum, for one multiset or for a whole batch of bootstrap resamples at once (:meth:`scores`).
    """

    def __init__(self, tokenized_predictions: Sequence[str], tokenized_references: Sequence[Sequence[str]]) -> None:
        if isinstance(tokenized_predictions, str) or len(tokenized_predictions) != len(tokenized_references):
            raise ValueError(
                f"tokenized_predictions and tokenized_references must be sequences of equal length; got "
                f"{len(tokenized_predictions)} and {len(tokenized_references)}."
            )
        if len(tokenized_predictions) == 0:
            raise ValueError("There are no captions to score; check the dataset and --limit.")
        vocab: dict[tuple[str, ...], int] = {}
        rows: list[int] = []  # hypothesis norms: rows [0, 4I); reference norms: [4I, 4I+4P); numerators: [4I+4P, ...)
        gids: list[int] = []
        coefs: list[float] = []
        df_items: list[int] = []
        df_gids: list[int] = []
        penalties: list[float] = []
        pair_items: list[int] = []
        num_items = len(tokenized_predictions)
        hyps = []
        refs_per_item = []
        for i, (pred, refs) in enumerate(zip(tokenized_predictions, tokenized_references)):
            if not isinstance(pred, str):
                raise TypeError(f"tokenized_predictions[{i}] must be a string; got {type(pred).__name__}.")
            if isinstance(refs, str) or len(refs) == 0 or not all(isinstance(r, str) for r in refs):
                raise ValueError(f"tokenized_references[{i}] must be a non-empty list of strings; got {refs!r}.")
            hyps.append(_ngram_counts(pred))
            refs_per_item.append([_ngram_counts(r) for r in refs])
        num_pairs = sum(len(r) for r in refs_per_item)
        ref_row0, num_row0 = CIDER_N * num_items, CIDER_N * (num_items + num_pairs)
        pair = 0
        for i, (hyp, refs) in enumerate(zip(hyps, refs_per_item)):
            for gram, tf in hyp.items():
                rows.append(CIDER_N * i + len(gram) - 1)
                gids.append(vocab.setdefault(gram, len(vocab)))
                coefs.append(float(tf * tf))
            # pycocoevalcap's "length" is the number of bigrams (its counts2vec adds term_freq when n == 1, a
            # 0-based n); this equals words - 1 except for empty sentences, whose zero vectors score 0 anyway.
            hyp_len = sum(tf for gram, tf in hyp.items() if len(gram) == 2)
            seen: set[tuple[str, ...]] = set()
            for ref in refs:
                for gram, tf in ref.items():
                    gid = vocab.setdefault(gram, len(vocab))
                    row = CIDER_N * pair + len(gram) - 1
                    rows.append(ref_row0 + row)
                    gids.append(gid)
                    coefs.append(float(tf * tf))
                    hyp_tf = hyp.get(gram)
                    if hyp_tf:
                        rows.append(num_row0 + row)
                        gids.append(gid)
                        coefs.append(float(min(hyp_tf, tf) * tf))
                seen.update(ref)
                delta = float(hyp_len - sum(tf for gram, tf in ref.items() if len(gram) == 2))
                penalties.append(np.e ** (-(delta**2) / (2 * CIDER_SIGMA**2)))
                pair_items.append(i)
                pair += 1
            df_items.extend([i] * len(seen))
            df_gids.extend(vocab[gram] for gram in seen)
        self._num_items = num_items
        self._num_pairs = num_pairs
        self._penalties = np.asarray(penalties, dtype=np.float64)
        self._refs_per_item = np.bincount(pair_items, minlength=num_items).astype(np.float64)
        # The sums every score needs, as sparse matrices built once: scoring many multisets is then three sparse
        # products (document frequencies, norms and numerators, per-item totals) and a few elementwise passes.
        total_rows = CIDER_N * (num_items + 2 * num_pairs)
        self._doc_freq = summing_matrix(np.asarray(df_items), np.asarray(df_gids), (num_items, len(vocab)))
        self._row_sums = summing_matrix(np.asarray(gids), np.asarray(rows), (len(vocab), total_rows), coefs)
        self._pair_sums = summing_matrix(np.arange(num_pairs), np.asarray(pair_items), (num_pairs, num_items))
        self._pair_items = np.asarray(pair_items, dtype=np.intp)

    def __len__(self) -> int:
        return self._num_items

    def _indices(self, indices: Sequence[int] | np.ndarray | None) -> np.ndarray:
        if indices is None:
            return np.arange(self._num_items)
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.size == 0:
            raise ValueError(f"indices must be a non-empty 1-D sequence of item positions; got shape {idx.shape}.")
        if not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"indices must be integer item positions; got dtype {idx.dtype}.")
        if idx.min() < 0 or idx.max() >= self._num_items:
            raise IndexError(f"indices must lie in [0, {self._num_items}); got values from {idx.min()} to {idx.max()}.")
        return idx.astype(np.intp, copy=False)

    def _counts(self, idx: np.ndarray) -> np.ndarray:
        return np.bincount(idx, minlength=self._num_items).astype(np.float64)[None, :]

    def _scores_by_item(self, counts: np.ndarray) -> np.ndarray:
        """``(multisets, items)``: CIDEr-D of every item under the idf of each row's multiset (``counts[r, i]``
        copies of item i; rows with no item give NaN)."""
        idf = np.log(counts.sum(axis=1))[:, None] - np.log(np.maximum(counts @ self._doc_freq, 1.0))
        sums = (idf * idf) @ self._row_sums
        n_items, n_pairs, rows = CIDER_N * self._num_items, CIDER_N * self._num_pairs, counts.shape[0]
        hyp_norm = np.sqrt(sums[:, :n_items].reshape(rows, -1, CIDER_N))[:, self._pair_items]
        ref_norm = np.sqrt(sums[:, n_items : n_items + n_pairs].reshape(rows, -1, CIDER_N))
        numer = sums[:, n_items + n_pairs :].reshape(rows, -1, CIDER_N)
        denom = hyp_norm * ref_norm
        # pycocoevalcap divides only when both norms are non-zero; the numerator is then 0 anyway (kept in place).
        cosine = np.divide(numer, denom, out=numer, where=denom != 0)
        per_pair = cosine.mean(axis=2) * self._penalties
        return per_pair @ self._pair_sums / self._refs_per_item * 10.0

    def scores(self, counts: np.ndarray) -> np.ndarray:
        """Corpus CIDEr-D of many multisets at once (``counts[r, i]``: copies of item i in multiset r), e.g. every
        bootstrap resample; NaN for an empty multiset. Rows go in blocks that bound the temporaries."""
        counts = np.asarray(counts, dtype=np.float64)
        out = np.empty(counts.shape[0])
        block = max(1, _CIDER_BLOCK_VALUES // max(self._row_sums.shape))
        for start in range(0, counts.shape[0], block):
            part = counts[start : start + block]
            with np.errstate(divide="ignore", invalid="ignore"):  # an empty multiset: NaN, quietly
                out[start : start + block] = (part * self._scores_by_item(part)).sum(axis=1) / part.sum(axis=1)
        return out

    def item_scores(self, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Per-position CIDEr-D of the multiset ``indices`` (all items once when None), duplicates included."""
        idx = self._indices(indices)
        return self._scores_by_item(self._counts(idx))[0, idx]

    def score(self, indices: Sequence[int] | np.ndarray | None = None) -> float:
        """Corpus CIDEr-D of the multiset ``indices`` (all items once when None): the mean over its positions."""
        return float(self.scores(self._counts(self._indices(indices)))[0])


def cider_d(
    tokenized_predictions: Sequence[str], tokenized_references: Sequence[Sequence[str]]
) -> tuple[float, list[float]]:
    """Corpus CIDEr-D and per-item scores of already-tokenized text, equal to pycocoevalcap's ``Cider``.

    Items are positions, so repeated items (a bootstrap resample) count as separate documents. For many resamples
    of one set, build a ``CiderCorpus`` once and call ``score(indices)`` instead.
    """
    per_item = CiderCorpus(tokenized_predictions, tokenized_references).item_scores()
    return float(per_item.mean()), [float(s) for s in per_item]


def _check_domains(domains: Iterable[Any]) -> list[str]:
    """The domains as strings; an unknown one is an error naming it (a typo would silently empty a domain)."""
    names = [str(d) for d in domains]
    bad = sorted(set(names) - set(NOCAPS_DOMAINS))
    if bad:
        raise ValueError(f"Unknown NoCaps domain(s) {bad}; expected one of {list(NOCAPS_DOMAINS)}.")
    return names


def nocaps_domain_cider(
    tokenized_predictions: Mapping[K, str],
    tokenized_references: Mapping[K, Sequence[str]],
    domains: Mapping[K, str],
) -> dict[str, float]:
    """NoCaps CIDEr for ``in-domain``, ``near-domain``, ``out-domain`` and ``entire``, on the EvalAI server's keys.

    Each domain is scored as its own corpus: CIDEr-D over that domain's images only, with document frequencies
    from that domain's references, which is what running COCOEvalCap on each domain's subset gives (the server
    returns one full metric set per domain and for the entire split). So ``entire`` is not the image-weighted mean
    of the three domain scores. Inputs are PTB-tokenized text (``CaptionScores.tokenized_*``); a domain with no
    images is NaN.
    """
    keys = _check_captions(tokenized_predictions, tokenized_references)
    if set(domains) != set(keys):
        raise ValueError("domains must give a domain for exactly the image ids of the predictions.")
    _check_domains(domains.values())
    corpus = CiderCorpus([tokenized_predictions[k] for k in keys], [tokenized_references[k] for k in keys])
    result: dict[str, float] = {}
    for domain in NOCAPS_DOMAINS:
        idx = [i for i, k in enumerate(keys) if domains[k] == domain]
        result[domain] = corpus.score(idx) if idx else math.nan
    result["entire"] = corpus.score()
    return result


NOCAPS_DOMAIN_METRICS = {"CIDEr_in": "in-domain", "CIDEr_near": "near-domain", "CIDEr_out": "out-domain"}


def bleu_statistics(tokenized_prediction: str, tokenized_references: Sequence[str], n: int = 4) -> list[float]:
    """One caption's sufficient statistics for corpus BLEU, as pycocoevalcap's ``BleuScorer`` accumulates them:
    ``[test length, closest reference length, guesses for n = 1..4, clipped matches for n = 1..4]``."""
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer

    scorer = BleuScorer(n=n)
    scorer += (tokenized_prediction, list(tokenized_references))
    comps = scorer.ctest[0]
    reflen = scorer._single_reflen(comps["reflen"], "closest", comps["testlen"])
    return [float(comps["testlen"]), float(reflen), *map(float, comps["guess"]), *map(float, comps["correct"])]


def corpus_bleu(statistics: Sequence[Sequence[float]], n: int = 4) -> list[float]:
    """Corpus BLEU-1..n from summed :func:`bleu_statistics`, with pycocoevalcap's smoothing constants: exactly its
    ``Bleu(4).compute_score`` (option ``closest``) on the same captions, without re-reading any text."""
    totals = np.sum(np.asarray(statistics, dtype=np.float64), axis=0)
    return [float(b) for b in _bleu_from_totals(totals[None, :], n)[0]]


def _bleu_from_totals(totals: np.ndarray, n: int = 4) -> np.ndarray:
    """``(sets, n)`` corpus BLEU-1..n of each row of summed statistics, pycocoevalcap's arithmetic step for step."""
    testlen, reflen, guess, correct = totals[:, 0], totals[:, 1], totals[:, 2 : 2 + n], totals[:, 2 + n : 2 + 2 * n]
    small, tiny = 1e-9, 1e-15
    bleus = np.cumprod((correct + tiny) / (guess + small), axis=1) ** (1.0 / np.arange(1, n + 1))
    ratio = (testlen + tiny) / (reflen + small)
    with np.errstate(divide="ignore"):
        brevity = np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)
    return bleus * brevity[:, None]


def caption_sample_records(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    *,
    domains: Mapping[str, str] | None = None,
    spice: bool | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]], dict[str, str]]:
    """(corpus metrics, one record per id, not_computed) for a captioning task, in ``predictions``' order.

    Records carry ``id``, ``caption``, the per-image ``CIDEr``, and the PTB-tokenized caption and references, so that
    :func:`caption_metrics_from_samples` recomputes the corpus scores on any resample without Java.
    """
    from pycocoevalcap.rouge.rouge import Rouge

    scores = caption_metrics(predictions, references, spice=spice)
    metrics = dict(scores.scores)
    keys = list(predictions)
    rouge = Rouge()
    samples = []
    for key in keys:
        tokens, refs = scores.tokenized_predictions[key], scores.tokenized_references[key]
        sample = {
            "id": key,
            "caption": predictions[key],
            "CIDEr": scores.per_image_cider[key],
            "ROUGE_L": float(rouge.calc_score([tokens], refs)),  # corpus ROUGE-L is the mean of these
            "bleu_statistics": bleu_statistics(tokens, refs),
            "caption_tokens": tokens,
            "reference_tokens": refs,
        }
        if domains is not None:
            sample["domain"] = domains[key]
        samples.append(sample)
    if domains is not None:
        by_domain = nocaps_domain_cider(scores.tokenized_predictions, scores.tokenized_references, domains)
        metrics.update({metric: by_domain[domain] for metric, domain in NOCAPS_DOMAIN_METRICS.items()})
    return metrics, samples, dict(scores.not_computed)


def caption_metrics_from_samples(samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Corpus CIDEr and BLEU-1..4 (and NoCaps domain CIDEr) from stored records, exactly and fast: the
    :func:`caption_resampler` of the records, evaluated once on all of them."""
    evaluate = caption_resampler(samples)
    return {name: float(values[0]) for name, values in evaluate(np.ones((1, len(samples)))).items()}


def caption_resampler(samples: Sequence[Mapping[str, Any]]) -> Resampler:
    """:func:`caption_metrics_from_samples` on every bootstrap resample at once, from per-image statistics read once
    (see :mod:`~coca_bench.metrics.resampling`): BLEU from count-weighted sums of per-caption statistics, CIDEr-D
    through :meth:`CiderCorpus.scores` (positions are the documents, so a resample that repeats an image counts it
    twice, as a corpus holding it twice would), NoCaps domain CIDEr from the domain's share of each resample.
    ROUGE-L is the mean of its per-sample field; METEOR needs Java and SPICE its jars, so neither is recomputed."""
    if not samples:
        raise ValueError("There are no captions to score.")
    corpus = CiderCorpus([s["caption_tokens"] for s in samples], [list(s["reference_tokens"]) for s in samples])
    statistics = np.asarray([s["bleu_statistics"] for s in samples], dtype=np.float64)
    masks: dict[str, np.ndarray] = {}
    if "domain" in samples[0]:
        domains = np.array(_check_domains(s["domain"] for s in samples))
        masks = {metric: (domains == domain).astype(np.float64) for metric, domain in NOCAPS_DOMAIN_METRICS.items()}

    def evaluate(counts: np.ndarray) -> dict[str, np.ndarray]:
        out = {f"Bleu_{k + 1}": column for k, column in enumerate(_bleu_from_totals(counts @ statistics).T)}
        out["CIDEr"] = corpus.scores(counts)
        out.update({metric: corpus.scores(counts * mask) for metric, mask in masks.items()})
        return out

    return evaluate
