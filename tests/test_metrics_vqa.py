"""VQA v2 accuracy: hand-computed cases per official rule, plus a line-by-line transcription of the official loop."""

from __future__ import annotations

import math
import random
import re

import pytest

from coca_bench.metrics.vqa import normalize_answer, process_punctuation, vqa_accuracy, vqa_metrics_from_samples


def _gts(matching: str, n_match: int, other: str = "cat") -> list[str]:
    return [matching] * n_match + [other] * (10 - n_match)


def test_number_words_become_digits():
    assert normalize_answer("two") == "2"
    assert normalize_answer("Ten") == "10"
    assert normalize_answer("none") == "0"
    assert normalize_answer("twenty") == "twenty"  # only zero..ten and "none" are mapped
    assert vqa_accuracy("two", ["2"] * 10) == 1.0


def test_articles_are_dropped():
    assert normalize_answer("a dog") == "dog"
    assert normalize_answer("The an dog") == "dog"
    assert normalize_answer("another dog") == "another dog"
    assert vqa_accuracy("a dog", ["dog"] * 10) == 1.0


def test_contractions_are_restored():
    assert normalize_answer("dont") == "don't"
    assert normalize_answer("Whats up") == "what's up"
    assert normalize_answer("Im") == "im"  # the table's key is "Im" but lookup happens after lower-casing
    assert vqa_accuracy("dont", ["don't"] * 10) == 1.0


def test_punctuation_period_and_comma_rules():
    assert normalize_answer("yes.") == "yes"
    assert normalize_answer("Yes!") == "yes"
    assert normalize_answer("3.5") == "3.5"  # a period before a digit stays
    assert normalize_answer("e.g.") == "eg"
    assert normalize_answer("1,000") == "1000"  # digit-comma-digit: the comma is deleted, not spaced
    assert normalize_answer("1,000 red-white") == "1000 redwhite"  # ... and so is every other mark
    assert normalize_answer("red-white") == "red white"  # no space next to "-": replaced by a space
    assert normalize_answer("red - white") == "red white"  # a space next to "-": deleted
    assert normalize_answer("red/-white-blue") == "red white blue"  # the space test reads the input, not the output
    assert normalize_answer("2.") == "2"  # the typo'd look-behind strips a period after a digit too
    assert normalize_answer("10:30") == "10:30"  # ":" and "'" are not in the official list
    assert normalize_answer("yes" + "." * 35) == "yes..."  # re.UNICODE passed as count: at most 32 removed
    assert process_punctuation("dog?") == "dog "  # punctuation alone leaves the space; split() removes it later


def test_whitespace_is_cleaned_before_punctuation():
    assert normalize_answer("\tA   Dog\n") == "dog"
    assert normalize_answer("red-white\t-") == "redwhite"  # the tab became a space next to "-": every "-" deleted
    assert normalize_answer(" -red-white") == "red white"  # stripped first: no space next to "-" any more
    assert vqa_accuracy(" yes\n", ["yes"] * 10) == 1.0


def test_ground_truth_gets_punctuation_only_and_only_when_answers_differ():
    assert vqa_accuracy("1,000", ["1,000"] * 10) == 0.0  # all identical: the raw "1,000" is compared to "1000"
    assert vqa_accuracy("1,000", ["1,000"] * 9 + ["cat"]) == 1.0  # they differ: the answers become "1000"
    assert vqa_accuracy("two", ["two"] * 10) == 0.0  # ground truth never gets number words mapped
    assert vqa_accuracy("two", ["two"] * 9 + ["2"]) == pytest.approx(0.3)  # ... even when they differ: only "2" counts
    assert vqa_accuracy("Yes", ["Yes"] * 10) == 0.0  # ... nor lower-cased
    assert vqa_accuracy("dog?", ["dog?"] * 9 + ["cat"]) == 0.0  # "dog " (ground truth) != "dog" (prediction)


@pytest.mark.parametrize(
    ("n_match", "expected"),
    [
        (0, 0.0),
        (1, 0.3),  # 9 left-out sets hold 1 match: 9 * (1/3) / 10
        (2, 0.6),  # 2 * (1/3) + 8 * (2/3) = 6, / 10
        (3, 0.9),  # 3 * (2/3) + 7 * 1 = 9, / 10 (not 1.0: leave-one-out)
        (4, 1.0),  # every left-out set still holds >= 3 matches
        (10, 1.0),
    ],
)
def test_leave_one_out_average_hand_computed(n_match: int, expected: float):
    assert vqa_accuracy("dog", _gts("dog", n_match)) == pytest.approx(expected, abs=1e-12)
    assert vqa_accuracy("dog", _gts("dog", n_match)[::-1]) == pytest.approx(expected, abs=1e-12)


def test_bad_ground_truth_is_rejected():
    with pytest.raises(ValueError, match="single string"):
        vqa_accuracy("dog", "dog")
    with pytest.raises(ValueError, match="empty"):
        vqa_accuracy("dog", [])


def test_metrics_from_samples_per_type_with_a_missing_type():
    samples = [
        {"accuracy": 1.0, "answer_type": "yes/no"},
        {"accuracy": 0.0, "answer_type": "yes/no"},
        {"accuracy": 0.9, "answer_type": "yes/no"},
        {"accuracy": 0.3, "answer_type": "other"},
    ]
    metrics = vqa_metrics_from_samples(samples)
    assert metrics["accuracy"] == pytest.approx(2.2 / 4)  # mean over questions, not over types
    assert metrics["accuracy_yes/no"] == pytest.approx(1.9 / 3)
    assert metrics["accuracy_other"] == pytest.approx(0.3)
    assert math.isnan(metrics["accuracy_number"])
    assert set(metrics) == {"accuracy", "accuracy_yes/no", "accuracy_number", "accuracy_other"}


def test_metrics_from_samples_rejects_bad_records():
    with pytest.raises(ValueError, match="no samples"):
        vqa_metrics_from_samples([])
    with pytest.raises(ValueError, match="answer_type"):
        vqa_metrics_from_samples([{"accuracy": 1.0, "answer_type": "unanswerable"}])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vqa_metrics_from_samples([{"accuracy": 100.0, "answer_type": "other"}])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vqa_metrics_from_samples([{"accuracy": float("nan"), "answer_type": "other"}])


# --- Reference: GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/vqaEval.py, commit
# c4e6a0e4e84b9702d99800d3393652d92b5df224: VQAEval.__init__ tables, processPunctuation, processDigitArticle and
# the body of the evaluate() loop for one question, transcribed statement by statement with their own copy of the
# tables (contractions written as "key=value" pairs), so a slip in either transcription shows up.
_REF_CONTRACTIONS = dict(
    pair.split("=", 1)
    for pair in """
aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't couldn'tve=couldn't've
couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't hadnt=hadn't hadnt've=hadn't've hadn'tve=hadn't've
hasnt=hasn't havent=haven't hed=he'd hed've=he'd've he'dve=he'd've hes=he's howd=how'd howll=how'll hows=how's
Id've=I'd've I'dve=I'd've Im=I'm Ive=I've isnt=isn't itd=it'd itd've=it'd've it'dve=it'd've itll=it'll
let's=let's maam=ma'am mightnt=mightn't mightnt've=mightn't've mightn'tve=mightn't've mightve=might've
mustnt=mustn't mustve=must've neednt=needn't notve=not've oclock=o'clock oughtnt=oughtn't ow's'at='ow's'at
'ows'at='ow's'at 'ow'sat='ow's'at shant=shan't shed've=she'd've she'dve=she'd've she's=she's shouldve=should've
shouldnt=shouldn't shouldnt've=shouldn't've shouldn'tve=shouldn't've somebody'd=somebodyd
somebodyd've=somebody'd've somebody'dve=somebody'd've somebodyll=somebody'll somebodys=somebody's
someoned=someone'd someoned've=someone'd've someone'dve=someone'd've someonell=someone'll someones=someone's
somethingd=something'd somethingd've=something'd've something'dve=something'd've somethingll=something'll
thats=that's thered=there'd thered've=there'd've there'dve=there'd've therere=there're theres=there's
theyd=they'd theyd've=they'd've they'dve=they'd've theyll=they'll theyre=they're theyve=they've twas='twas
wasnt=wasn't wed've=we'd've we'dve=we'd've weve=we've werent=weren't whatll=what'll whatre=what're whats=what's
whatve=what've whens=when's whered=where'd wheres=where's whereve=where've whod=who'd whod've=who'd've
who'dve=who'd've wholl=who'll whos=who's whove=who've whyll=why'll whyre=why're whys=why's wont=won't
wouldve=would've wouldnt=wouldn't wouldnt've=wouldn't've wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll
y'allll=y'all'll yall'd've=y'all'd've y'alld've=y'all'd've y'all'dve=y'all'd've youd=you'd youd've=you'd've
you'dve=you'd've youll=you'll youre=you're youve=you've
""".split()
)
_REF_MANUAL_MAP = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5"}
_REF_MANUAL_MAP.update({"six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"})
_REF_ARTICLES = ["a", "an", "the"]
_REF_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_REF_COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")
_REF_PUNCT = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]


def _ref_process_punctuation(inText):  # noqa: N803 (official names)
    outText = inText
    for p in _REF_PUNCT:
        if (p + " " in inText or " " + p in inText) or (re.search(_REF_COMMA_STRIP, inText) is not None):
            outText = outText.replace(p, "")
        else:
            outText = outText.replace(p, " ")
    outText = _REF_PERIOD_STRIP.sub("", outText, re.UNICODE)  # sic: the flag is sub's positional count
    return outText


def _ref_process_digit_article(inText):  # noqa: N803
    outText = []
    tempText = inText.lower().split()
    for word in tempText:
        word = _REF_MANUAL_MAP.setdefault(word, word)
        if word not in _REF_ARTICLES:
            outText.append(word)
    for wordId, word in enumerate(outText):
        if word in _REF_CONTRACTIONS:
            outText[wordId] = _REF_CONTRACTIONS[word]
    outText = " ".join(outText)
    return outText


def _ref_evaluate_one(res_answer: str, gt_answers: list[str]) -> float:
    # The annotation's answers are dicts with distinct answer_id 1..10, so `item != gtAnsDatum` drops exactly one.
    answers = [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(gt_answers)]
    resAns = res_answer
    resAns = resAns.replace("\n", " ")
    resAns = resAns.replace("\t", " ")
    resAns = resAns.strip()
    resAns = _ref_process_punctuation(resAns)
    resAns = _ref_process_digit_article(resAns)
    gtAcc = []
    gtAnswers = [ans["answer"] for ans in answers]
    if len(set(gtAnswers)) > 1:
        for ansDic in answers:
            ansDic["answer"] = _ref_process_punctuation(ansDic["answer"])
    for gtAnsDatum in answers:
        otherGTAns = [item for item in answers if item != gtAnsDatum]
        matchingAns = [item for item in otherGTAns if item["answer"] == resAns]
        acc = min(1, float(len(matchingAns)) / 3)
        gtAcc.append(acc)
    avgGTAcc = float(sum(gtAcc)) / len(gtAcc)
    return avgGTAcc


_CLEAN = ["2", "0", "10", "3.5", "1000", "yes", "no", "dog", "red white", "don't", "what's", "10:30", "im"]
_WORDS = ["two", "Two", "none", "ten", "1,000", "1,0", "a", "an", "The", "dog", "Dogs", "YES", "dont", "whats", "Im"]
_NOISY = ["Two", "2.", "A dog", "dont", "1,000", "Yes!", "red-white", "red - white", "10:30.", "3.5."]
_MARKS = ["", "", "", ".", "?", "!", ",", "-", "/", "'", '"', "(", ")", ":", ";", " .", "..", "\n", "\t"]


def _random_answer(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(_CLEAN)
    words = [rng.choice(_WORDS + _CLEAN) + rng.choice(_MARKS) for _ in range(rng.randint(1, 3))]
    return rng.choice([" ", " ", "  ", "-", ", ", ","]).join(words)


def test_matches_official_evaluate_on_random_cases():
    rng = random.Random(0)
    seen = set()
    for _ in range(1000):
        pool = [_random_answer(rng) for _ in range(rng.choice([1, 1, 2, 3]))]
        gts = [rng.choice(pool) for _ in range(10)]
        core = rng.choice([rng.choice(pool), _random_answer(rng), rng.choice(_NOISY)])
        prediction = rng.choice(["", "", " ", "\t", "a ", "The "]) + core + rng.choice(["", "", " ", "\n", "\t-"])
        expected = _ref_evaluate_one(prediction, gts)
        assert vqa_accuracy(prediction, gts) == expected, (prediction, gts)
        seen.add((round(expected, 6), len(set(gts)) > 1))
    # The draw exercises every leave-one-out value, with identical and with differing ground truths.
    assert {(0.0, True), (1.0, True), (0.0, False), (1.0, False)} <= seen
    assert {round(v, 6) for v, _ in seen} >= {0.0, 0.3, 0.6, 0.9, 1.0}
