"""Qualitative samples of one task, side by side across checkpoints: what the model actually did.

The kind of display is the task's own declaration (:class:`~coca_bench.registry.SampleView`), never its name nor a
guess from its records' fields, so a plugin task gets the same view as a built-in one; a task without a view gets a
table of its first records.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coca_bench.report.media import MediaIndex, frame_strip, thumbnail

if TYPE_CHECKING:
    from coca_bench.registry import SampleView

MAX_SAMPLES = 6  # per task (per checkpoint for classification mistakes)
MAX_RETRIEVAL_QUERIES = 4


def _picture(media: MediaIndex, sample: Mapping[str, Any]) -> str:
    """The sample's thumbnail (or frame strip for video), or a placeholder saying why there is none."""
    path = media.paths.get(str(sample.get("id")))
    if media.video:
        uri = frame_strip(path, sample.get("frame_indices") or [])
    else:
        uri = thumbnail(path)
    if uri is not None:
        alt = f"frames of {sample.get('id')}" if media.video else f"image {sample.get('id')}"
        return f'<img class="{"strip" if media.video else "thumb"}" src="{uri}" alt="{escape(alt)}">'
    if path is None:
        reason = media.problem or "no media for this id"
    else:
        reason = f"cannot read {Path(path).name}"
    title = escape(str(path or ""))
    return f'<div class="placeholder" title="{title}">no picture<br><small>{escape(reason)}</small></div>'


def _checkpoint_tag(checkpoint: str) -> str:
    return f'<span class="ckpt">{escape(checkpoint)}</span>'


def _number(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else escape(str(value))


def _first_ids(by_checkpoint: Mapping[str, Mapping[str, dict]], limit: int) -> list[str]:
    first = next(iter(by_checkpoint.values()), {})
    return list(first)[:limit]


def _card(picture: str, body: str) -> str:
    wide = " wide" if 'class="strip"' in picture else ""  # a frame strip needs room beside it
    return f'<div class="card{wide}">{picture}<div class="card-body">{body}</div></div>'


def _captioning(by_checkpoint: Mapping[str, Mapping[str, dict]], media: MediaIndex) -> str:
    cards = []
    for sample_id in _first_ids(by_checkpoint, MAX_SAMPLES):
        first = next(s[sample_id] for s in by_checkpoint.values() if sample_id in s)
        references = media.captions.get(sample_id) or tuple(first.get("reference_tokens") or ())
        generated = "".join(
            f"<li>{_checkpoint_tag(c)} {escape(str(s[sample_id].get('caption', '')))}"
            + (f' <span class="score">CIDEr {_number(s[sample_id]["CIDEr"])}</span>' if "CIDEr" in s[sample_id] else "")
            + "</li>"
            for c, s in by_checkpoint.items()
            if sample_id in s
        )
        refs = "".join(f"<li>{escape(r)}</li>" for r in references[:5])
        more = f"<li>… {len(references) - 5} more</li>" if len(references) > 5 else ""
        body = (
            f'<div class="sid">{escape(sample_id)}</div>'
            f'<div class="label">generated</div><ul class="gen">{generated}</ul>'
            f'<div class="label">references</div><ul class="refs">{refs}{more or ""}</ul>'
        )
        cards.append(_card(_picture(media, first), body))
    return f'<div class="cards">{"".join(cards)}</div>'


def _vqa(by_checkpoint: Mapping[str, Mapping[str, dict]], media: MediaIndex) -> str:
    cards = []
    for sample_id in _first_ids(by_checkpoint, MAX_SAMPLES):
        first = next(s[sample_id] for s in by_checkpoint.values() if sample_id in s)
        question = media.items.get(sample_id)
        text = getattr(question, "question", None)
        asked = escape(str(text)) if text is not None else "<em>question text not available</em>"
        answers = Counter(getattr(question, "answers", ()) or ())
        answer_text = ", ".join(f"{escape(a)} ×{n}" for a, n in answers.most_common()) or "<em>not available</em>"
        predicted = "".join(
            f"<li>{_checkpoint_tag(c)} {escape(str(s[sample_id].get('answer', '')))} "
            f'<span class="score">accuracy {_number(s[sample_id].get("accuracy"), 2)}</span></li>'
            for c, s in by_checkpoint.items()
            if sample_id in s
        )
        kind = f' <span class="muted">({escape(str(first["answer_type"]))})</span>' if first.get("answer_type") else ""
        body = (
            f'<div class="sid">{escape(sample_id)}</div><div class="question">Q: {asked}{kind}</div>'
            f'<div class="label">predicted</div><ul class="gen">{predicted}</ul>'
            f'<div class="label">human answers</div><div class="refs">{answer_text}</div>'
        )
        cards.append(_card(_picture(media, first), body))
    return f'<div class="cards">{"".join(cards)}</div>'


def _caption_list(samples: Mapping[str, dict], media: MediaIndex) -> tuple[list[str], list[str]] | None:
    """The texts the task ranked (its kept images' captions in annotation order) and the image owning each."""
    if not all(sample_id in media.captions for sample_id in samples):
        return None
    texts = [text for sample_id in samples for text in media.captions[sample_id]]
    owners = [sample_id for sample_id in samples for _ in media.captions[sample_id]]
    return texts, owners


def _retrieval(by_checkpoint: Mapping[str, Mapping[str, dict]], media: MediaIndex, rank_field: str) -> str:
    lists = {c: _caption_list(s, media) for c, s in by_checkpoint.items()}
    cards = []
    for sample_id in _first_ids(by_checkpoint, MAX_RETRIEVAL_QUERIES):
        first = next(s[sample_id] for s in by_checkpoint.values() if sample_id in s)
        parts = [f'<div class="sid">{escape(sample_id)}</div>']
        for checkpoint, samples in by_checkpoint.items():
            if sample_id not in samples:
                continue
            sample, resolved = samples[sample_id], lists[checkpoint]
            items = []
            for index in sample.get("top5_texts") or []:
                if resolved is None or not 0 <= int(index) < len(resolved[0]):
                    items.append(f"<li>caption #{int(index)}</li>")
                    continue
                hit = resolved[1][int(index)] == sample_id
                mark = '<span class="hit" title="a caption of this image">✓</span> ' if hit else ""
                items.append(f'<li class="{"hit" if hit else ""}">{mark}{escape(resolved[0][int(index)])}</li>')
            rank = (
                f' <span class="score">{escape(rank_field.replace("_", " "))} {sample[rank_field]}</span>'
                if rank_field and rank_field in sample
                else ""
            )
            parts.append(f'<div class="label">{_checkpoint_tag(checkpoint)} top 5{rank}</div><ol>{"".join(items)}</ol>')
        cards.append(_card(_picture(media, first), "".join(parts)))
    note = "" if all(lists.values()) else '<p class="muted">Caption texts unavailable: showing indices.</p>'
    return f'{note}<div class="cards">{"".join(cards)}</div>'


def _class_name(media: MediaIndex, label: Any) -> str:
    if isinstance(label, int) and 0 <= label < len(media.class_names):
        return f"{media.class_names[label]} ({label})"
    return str(label)


def _classification(by_checkpoint: Mapping[str, Mapping[str, dict]], media: MediaIndex) -> str:
    blocks = []
    for checkpoint, samples in by_checkpoint.items():
        mistakes = [s for s in samples.values() if s.get("pred") != s.get("label")]
        confident = all(isinstance(s.get("confidence"), (int, float)) for s in mistakes) and bool(mistakes)
        if confident:
            mistakes.sort(key=lambda s: -float(s["confidence"]))
        title = "most confident mistakes" if confident else "mistakes (the records carry no confidence)"
        cards = []
        for sample in mistakes[:MAX_SAMPLES]:
            confidence = (
                f'<div class="score">confidence {_number(sample["confidence"])}</div>' if "confidence" in sample else ""
            )
            body = (
                f'<div class="sid">{escape(str(sample.get("id")))}</div>'
                f"<div>true: <b>{escape(_class_name(media, sample.get('label')))}</b></div>"
                f'<div class="wrong">predicted: <b>{escape(_class_name(media, sample.get("pred")))}</b></div>'
                f"{confidence}"
            )
            cards.append(_card(_picture(media, sample), body))
        count = f"{len(mistakes)} of {len(samples)} samples misclassified"
        content = f'<div class="cards">{"".join(cards)}</div>' if cards else '<p class="muted">No mistakes.</p>'
        blocks.append(f"<h4>{_checkpoint_tag(checkpoint)} {escape(title)}: {count}</h4>{content}")
    return "".join(blocks)


def _records(by_checkpoint: Mapping[str, Mapping[str, dict]]) -> str:
    checkpoint, samples = next(iter(by_checkpoint.items()))
    rows = list(samples.values())[:MAX_SAMPLES]
    fields = list(dict.fromkeys(key for row in rows for key in row))

    def cell(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value)
        return escape(text if len(text) <= 80 else text[:77] + "…")

    head = "".join(f"<th>{escape(f)}</th>" for f in fields)
    body = "".join("<tr>" + "".join(f"<td>{cell(row.get(f, ''))}</td>" for f in fields) + "</tr>" for row in rows)
    return (
        f'<p class="muted">First records of {escape(checkpoint)}.</p>'
        f'<div class="scroll"><table class="plain"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def samples_section(by_checkpoint: Mapping[str, Mapping[str, dict]], media: MediaIndex, view: SampleView | None) -> str:
    """The qualitative view of one task, as its :class:`~coca_bench.registry.SampleView` declares (a table of its
    first records without one); ``by_checkpoint`` maps checkpoint -> {sample id -> record}, baseline first."""
    by_checkpoint = {c: s for c, s in by_checkpoint.items() if s}
    if not by_checkpoint:
        return '<p class="muted">No per-sample records are stored for this task.</p>'
    if view is None:
        return _records(by_checkpoint)
    problem = f'<p class="muted">Pictures unavailable: {escape(media.problem)}.</p>' if media.problem else ""
    if view.kind == "caption":
        return problem + _captioning(by_checkpoint, media)
    if view.kind == "answer":
        return problem + _vqa(by_checkpoint, media)
    if view.kind == "retrieval":
        return problem + _retrieval(by_checkpoint, media, view.rank_field)
    return problem + _classification(by_checkpoint, media)


__all__ = ["MAX_SAMPLES", "samples_section"]
