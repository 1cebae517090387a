"""VQA v2: the questions file joined with the annotations file by ``question_id``.

Official names, for a split such as ``val2014`` or ``test-dev2015``:
``v2_OpenEnded_mscoco_<split>_questions.json``, ``v2_mscoco_<split>_annotations.json``
and images ``<image folder>/COCO_<image folder>_<12-digit image id>.jpg``, where the
image folder drops the ``-dev`` of test-dev (its images are in ``test2015``).
Test splits have no public annotations: their questions come without answers.
"""

from __future__ import annotations

from pathlib import Path

from coca_bench.data.annotations import AnnotationFile, DatasetNotFoundError, require_dataset_dir
from coca_bench.data.records import VqaQuestion, VqaSet

VQA_ANSWER_TYPES = ("yes/no", "number", "other")


def vqa_image_folder(split: str) -> str:
    return split.replace("test-dev", "test")


def read_vqa(root: Path, split: str = "val2014") -> VqaSet:
    """Questions of ``split`` with their 10 answers (none for test splits without annotations)."""
    root = require_dataset_dir(
        Path(root),
        f"VQA v2's v2_OpenEnded_mscoco_{split}_questions.json, v2_mscoco_{split}_annotations.json "
        f"and {vqa_image_folder(split)}/",
    )
    questions_file = AnnotationFile(root / f"v2_OpenEnded_mscoco_{split}_questions.json", "the VQA v2 questions format")
    annotations_file = AnnotationFile(root / f"v2_mscoco_{split}_annotations.json", "the VQA v2 annotations format")
    questions_file.require_exists(f"the VQA v2 questions file for split {split!r} in {root}")
    has_answers = annotations_file.path.is_file()
    if not has_answers and not split.startswith("test"):
        raise DatasetNotFoundError(
            f"Annotation file {annotations_file.path} does not exist; split {split!r} needs its answers "
            f"(only test splits may come without annotations)."
        )

    answers_by_question = _read_annotations(annotations_file) if has_answers else {}
    image_folder = vqa_image_folder(split)
    payload = questions_file.load_json()
    questions = []
    first_of: dict[int, int] = {}  # question id -> index in 'questions', for duplicates
    for index, entry in enumerate(questions_file.objects(payload, "questions")):
        where = f"questions[{index}]"
        question_id = questions_file.field(entry, "question_id", where, int)
        if question_id in first_of:
            raise questions_file.error(
                f"{where} repeats the question_id {question_id} of questions[{first_of[question_id]}]"
            )
        first_of[question_id] = index
        image_id = questions_file.field(entry, "image_id", where, int)
        text = questions_file.field(entry, "question", where, str)
        annotation = answers_by_question.pop(question_id, None)
        if has_answers and annotation is None:
            raise annotations_file.error(
                f"has no annotation for question_id {question_id} ({questions_file.path.name} {where})"
            )
        if annotation is not None and annotation["image_id"] != image_id:
            raise annotations_file.error(
                f"question_id {question_id} has image_id {annotation['image_id']}, but the questions file says {image_id}"
            )
        questions.append(
            VqaQuestion(
                question_id=question_id,
                image_id=image_id,
                image_path=root / image_folder / f"COCO_{image_folder}_{image_id:012d}.jpg",
                question=text,
                answers=annotation["answers"] if annotation else (),
                answer_type=annotation["answer_type"] if annotation else None,
                question_type=annotation["question_type"] if annotation else None,
                multiple_choice_answer=annotation["multiple_choice_answer"] if annotation else None,
            )
        )
    files = (questions_file.path, annotations_file.path) if has_answers else (questions_file.path,)
    return VqaSet(items=tuple(questions), split=split, annotation_files=files, has_answers=has_answers)


def _read_annotations(source: AnnotationFile) -> dict[int, dict]:
    payload = source.load_json()
    by_question: dict[int, dict] = {}
    for index, entry in enumerate(source.objects(payload, "annotations")):
        where = f"annotations[{index}]"
        question_id = source.field(entry, "question_id", where, int)
        answer_type = source.field(entry, "answer_type", where, str)
        if answer_type not in VQA_ANSWER_TYPES:
            raise source.error(f"{where}.answer_type is {answer_type!r}, not one of {list(VQA_ANSWER_TYPES)}")
        answers = tuple(
            source.field(answer, "answer", f"{where}.answers[{k}]", str)
            for k, answer in enumerate(source.objects(entry, "answers", where))
        )
        if not answers:
            raise source.error(f"{where}.answers is empty")
        if question_id in by_question:
            raise source.error(f"{where} repeats question_id {question_id}")
        by_question[question_id] = {
            "image_id": source.field(entry, "image_id", where, int),
            "answers": answers,
            "answer_type": answer_type,
            "question_type": source.optional_field(entry, "question_type", where, str),
            "multiple_choice_answer": source.optional_field(entry, "multiple_choice_answer", where, str),
        }
    return by_question


__all__ = ["VQA_ANSWER_TYPES", "read_vqa", "vqa_image_folder"]
