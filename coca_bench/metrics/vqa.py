"""VQA v2 accuracy, exactly as the official evaluator computes it (pure Python; numpy only in the bootstrap form).

Transcribed from GT-Vision-Lab/VQA ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` at commit
c4e6a0e4e84b9702d99800d3393652d92b5df224, quirks included, so that our numbers equal the official ones:
- the punctuation list is the file's (``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !``): ``:`` and ``'`` are kept;
- a mark is deleted (not replaced by a space) when it touches a space anywhere in the text, and *every* mark is
  deleted when the text contains a digit-comma-digit, so "1,000" becomes "1000";
- the period regex has a typo'd look-behind, ``(?!<=\\d)``, so it removes every "." not followed by a digit,
  and ``re.UNICODE`` lands in ``sub``'s ``count`` argument, so at most 32 periods are removed;
- the prediction always gets punctuation then digit/article/contraction processing; the ground-truth answers get
  punctuation processing only, and only when they are not all identical (raw answers are compared otherwise);
- the contraction table is case-sensitive and applied after lower-casing, so its capitalised keys never fire.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from coca_bench.metrics.resampling import Resampler, group_means, summing_matrix

CONTRACTIONS: dict[str, str] = {
    "aint": "ain't",
    "arent": "aren't",
    "cant": "can't",
    "couldve": "could've",
    "couldnt": "couldn't",
    "couldn'tve": "couldn't've",
    "couldnt've": "couldn't've",
    "didnt": "didn't",
    "doesnt": "doesn't",
    "dont": "don't",
    "hadnt": "hadn't",
    "hadnt've": "hadn't've",
    "hadn'tve": "hadn't've",
    "hasnt": "hasn't",
    "havent": "haven't",
    "hed": "he'd",
    "hed've": "he'd've",
    "he'dve": "he'd've",
    "hes": "he's",
    "howd": "how'd",
    "howll": "how'll",
    "hows": "how's",
    "Id've": "I'd've",
    "I'dve": "I'd've",
    "Im": "I'm",
    "Ive": "I've",
    "isnt": "isn't",
    "itd": "it'd",
    "itd've": "it'd've",
    "it'dve": "it'd've",
    "itll": "it'll",
    "let's": "let's",
    "maam": "ma'am",
    "mightnt": "mightn't",
    "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've",
    "mightve": "might've",
    "mustnt": "mustn't",
    "mustve": "must've",
    "neednt": "needn't",
    "notve": "not've",
    "oclock": "o'clock",
    "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at",
    "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at",
    "shant": "shan't",
    "shed've": "she'd've",
    "she'dve": "she'd've",
    "she's": "she's",
    "shouldve": "should've",
    "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll",
    "somebodys": "somebody's",
    "someoned": "someone'd",
    "someoned've": "someone'd've",
    "someone'dve": "someone'd've",
    "someonell": "someone'll",
    "someones": "someone's",
    "somethingd": "something'd",
    "somethingd've": "something'd've",
    "something'dve": "something'd've",
    "somethingll": "something'll",
    "thats": "that's",
    "thered": "there'd",
    "thered've": "there'd've",
    "there'dve": "there'd've",
    "therere": "there're",
    "theres": "there's",
    "theyd": "they'd",
    "theyd've": "they'd've",
    "they'dve": "they'd've",
    "theyll": "they'll",
    "theyre": "they're",
    "theyve": "they've",
    "twas": "'twas",
    "wasnt": "wasn't",
    "wed've": "we'd've",
    "we'dve": "we'd've",
    "weve": "we've",
    "werent": "weren't",
    "whatll": "what'll",
    "whatre": "what're",
    "whats": "what's",
    "whatve": "what've",
    "whens": "when's",
    "whered": "where'd",
    "wheres": "where's",
    "whereve": "where've",
    "whod": "who'd",
    "whod've": "who'd've",
    "who'dve": "who'd've",
    "wholl": "who'll",
    "whos": "who's",
    "whove": "who've",
    "whyll": "why'll",
    "whyre": "why're",
    "whys": "why's",
    "wont": "won't",
    "wouldve": "would've",
    "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've",
    "yall": "y'all",
    "yall'll": "y'all'll",
    "y'allll": "y'all'll",
    "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've",
    "youd": "you'd",
    "youd've": "you'd've",
    "you'dve": "you'd've",
    "youll": "you'll",
    "youre": "you're",
    "youve": "you've",
}
MANUAL_MAP: dict[str, str] = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
ARTICLES: tuple[str, ...] = ("a", "an", "the")
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: the official typo'd look-behind
COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")
PUNCT: tuple[str, ...] = (
    ";",
    "/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
)
# The official call is ``periodStrip.sub("", outText, re.UNICODE)``: the flag is the positional ``count``.
_PERIOD_STRIP_COUNT = int(re.UNICODE)
ANSWER_TYPES: tuple[str, ...] = ("yes/no", "number", "other")


def process_punctuation(text: str) -> str:
    """The official ``processPunctuation``: the space/comma tests look at the input, the edits at the output."""
    out = text
    has_digit_comma = COMMA_STRIP.search(text) is not None
    for p in PUNCT:
        if p + " " in text or " " + p in text or has_digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return PERIOD_STRIP.sub("", out, count=_PERIOD_STRIP_COUNT)


def process_digit_article(text: str) -> str:
    """The official ``processDigitArticle``: lower-case, number words to digits, drop articles, then contractions."""
    words = [MANUAL_MAP.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def normalize_answer(text: str) -> str:
    """The official cleaning of a predicted answer, so a free-form generation is scored as the server would."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text))


def vqa_accuracy(prediction: str, gt_answers: Sequence[str]) -> float:
    """Official per-question VQA accuracy as a fraction in [0, 1], kept at full precision.

    The official evaluator reports ``100 * acc`` rounded to 2 decimals; we keep the unrounded fraction so that
    means and bootstrap intervals are not biased by rounding. The score is the average, over each ground-truth
    answer left out in turn, of ``min(1, #matches among the others / 3)`` (VQA v2 has 10 answers per question).
    """
    if isinstance(gt_answers, str):
        raise ValueError("gt_answers must be a sequence of answer strings, not a single string.")
    answers = list(gt_answers)
    if not answers:
        raise ValueError("gt_answers is empty; a question needs at least one ground-truth answer.")
    pred = normalize_answer(prediction)
    if len(set(answers)) > 1:
        answers = [process_punctuation(a) for a in answers]
    matches = [a == pred for a in answers]
    total = sum(matches)
    per_left_out = [min(1.0, (total - m) / 3) for m in matches]
    return sum(per_left_out) / len(per_left_out)


def _typed_accuracies(samples: Sequence[Mapping[str, Any]]) -> list[tuple[str, float]]:
    """(answer type, accuracy) of every record, checked: a bad record must fail the same way on every path."""
    if not samples:
        raise ValueError("There are no samples to score.")
    out = []
    for s in samples:
        answer_type, acc = s["answer_type"], float(s["accuracy"])
        if answer_type not in ANSWER_TYPES:
            raise ValueError(f"answer_type must be one of {ANSWER_TYPES}; got {answer_type!r}.")
        if not 0.0 <= acc <= 1.0:
            raise ValueError(f"Every sample accuracy must be a number in [0, 1]; got {acc}.")
        out.append((answer_type, acc))
    return out


def vqa_metrics_from_samples(samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Overall and per-answer-type accuracy from per-question records (for the bootstrap).

    Each record carries ``accuracy`` (a :func:`vqa_accuracy` fraction) and ``answer_type`` (``"yes/no"``,
    ``"number"`` or ``"other"``). Every figure is a mean over questions, as in the official ``setAccuracy``;
    a type with no question is NaN rather than absent, so that every resample reports the same keys.
    """
    typed = _typed_accuracies(samples)
    by_type: dict[str, list[float]] = {t: [] for t in ANSWER_TYPES}
    for answer_type, acc in typed:
        by_type[answer_type].append(acc)
    metrics = {"accuracy": sum(acc for _, acc in typed) / len(typed)}
    for t in ANSWER_TYPES:
        metrics[f"accuracy_{t}"] = sum(by_type[t]) / len(by_type[t]) if by_type[t] else float("nan")
    return metrics


def vqa_resampler(samples: Sequence[Mapping[str, Any]]) -> Resampler:
    """:func:`vqa_metrics_from_samples` on every bootstrap resample at once (count-weighted means per answer type;
    see :mod:`~coca_bench.metrics.resampling`)."""
    import numpy as np

    typed = _typed_accuracies(samples)
    accuracy = np.array([acc for _, acc in typed])
    types = [ANSWER_TYPES.index(t) for t, _ in typed]
    by_type = summing_matrix(np.arange(len(types)), np.array(types), (len(types), len(ANSWER_TYPES)))

    def evaluate(counts: np.ndarray) -> dict[str, np.ndarray]:
        per_type = group_means(counts, by_type, accuracy)
        out = {"accuracy": counts @ accuracy / counts.sum(axis=1)}
        out.update({f"accuracy_{t}": per_type[:, j] for j, t in enumerate(ANSWER_TYPES)})
        return out

    return evaluate
