"""Caption generation: greedy, seeded top-k / top-p sampling, and (group) beam search, over a KV-cached decoder.

Semantics follow open_clip 3.3.0's ``CoCa.generate`` so that published captioning numbers can be reproduced:

- sequences start with the start token and count it in their length (``max_new_tokens + 1 == open_clip seq_len``),
  which must fit the text context length (``GenerationConfig.check_fits``);
- end-of-text is masked until ``min_new_tokens`` tokens exist (open_clip ``min_seq_len = min_new_tokens + 1``);
- greedy and sampling force end-of-text at the last position; finished rows are padded with ``pad_id``;
- beam search is Hugging Face's group beam search (``BeamSearchScorer``, early_stopping=False) re-implemented
  without the transformers dependency. open_clip scores beams with the *raw logits* (``beam_score="logits"``);
  ``beam_score="logprobs"`` gives standard log-probability beam search. Results record which one ran.

``decode_dtype="bf16"`` is an opt-in speed-up, not open_clip's computation: the text layers, the decoder, its caches
and the image keys/values run in bf16 (fast on CPUs with AMX / AVX-512-BF16), while scores are compared in fp32.
Tokens then mostly, not always, equal fp32's; the default ``"fp32"`` keeps exact parity. On a CPU without native bf16
arithmetic it is slower than fp32 (:mod:`coca_bench.hardware`): it then still runs in bf16, after a one-line warning.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from coca_bench.errors import SettingValueError

from .. import hardware
from .coca import CoCa

Strategy = Literal["greedy", "beam", "top_k", "top_p"]
STRATEGIES = ("greedy", "beam", "top_k", "top_p")
DecodeDtype = Literal["fp32", "bf16"]
DECODE_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class GenerationConfig:
    strategy: Strategy = "beam"
    max_new_tokens: int = 29
    min_new_tokens: int = 4
    num_beams: int = 6
    num_beam_groups: int = 3
    length_penalty: float = 1.0
    beam_score: Literal["logits", "logprobs"] = "logits"
    top_k: int = 50
    top_p: float = 0.9
    temperature: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0
    use_cache: bool = True
    decode_dtype: DecodeDtype = "fp32"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SettingValueError(f"strategy must be one of {STRATEGIES}, not {self.strategy!r}.")
        if not isinstance(self.decode_dtype, str) or self.decode_dtype not in DECODE_DTYPES:
            raise SettingValueError(
                f"decode_dtype must be one of {tuple(DECODE_DTYPES)} ('bf16' trades exact fp32 tokens for speed), "
                f"not {self.decode_dtype!r}."
            )
        if self.max_new_tokens <= 0:
            raise SettingValueError(f"max_new_tokens must be > 0, got {self.max_new_tokens}.")
        if not 0 <= self.min_new_tokens < self.max_new_tokens:
            raise SettingValueError(
                f"min_new_tokens must be in [0, max_new_tokens), got {self.min_new_tokens} with max {self.max_new_tokens}."
            )
        if self.strategy == "beam":
            if self.num_beams < 2 or self.num_beams % self.num_beam_groups:
                raise SettingValueError(
                    f"beam search needs num_beams >= 2 divisible by num_beam_groups; got {self.num_beams} and "
                    f"{self.num_beam_groups}."
                )
            if self.beam_score not in ("logits", "logprobs"):
                raise SettingValueError(
                    f"beam_score must be 'logits' (open_clip) or 'logprobs', not {self.beam_score!r}."
                )
        if self.strategy == "top_k" and self.top_k < 1:
            raise SettingValueError(f"top_k must be >= 1, got {self.top_k}.")
        if self.strategy == "top_p" and not 0 < self.top_p <= 1:
            raise SettingValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.temperature <= 0:
            raise SettingValueError(f"temperature must be > 0, got {self.temperature}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check_fits(self, context_length: int, prompt_length: int = 1) -> None:
        """Generated ids count the start token (and any prompt), as the tokenizer's context does, so that every token
        sits at a text position the model has (never the [CLS]'s) and a caption can be fed back (``caption_loss``,
        ``encode_text``): ``prompt_length + max_new_tokens <= context_length``. Checked before any network runs."""
        limit = context_length - prompt_length
        if self.max_new_tokens > limit:
            what = "the start token" if prompt_length == 1 else f"the start token and prompt ({prompt_length} tokens)"
            raise SettingValueError(
                f"max_new_tokens={self.max_new_tokens} does not fit the text context: {what} plus "
                f"{self.max_new_tokens} new tokens need {self.max_new_tokens + prompt_length} positions but this "
                f"model's context length is {context_length}, so use max_new_tokens <= {limit}."
            )


def _apply_min_length_and_repetition_penalty(
    scores: torch.Tensor, prefix: torch.Tensor, cfg: GenerationConfig, eos: int, prompt_length: int = 1
) -> torch.Tensor:
    """End-of-text masked before the minimum length, then the repetition penalty, in Hugging Face's semantics.

    ``prompt_length`` tokens of ``prefix`` (the start token, and any prompt) do not count as new tokens."""
    if prefix.shape[1] - prompt_length < cfg.min_new_tokens:
        scores = scores.clone()
        scores[:, eos] = float("-inf")
    if cfg.repetition_penalty != 1.0:
        seen = torch.gather(scores, 1, prefix)
        seen = torch.where(seen < 0, seen * cfg.repetition_penalty, seen / cfg.repetition_penalty)
        scores = scores.scatter(1, prefix, seen)
    return scores


def _warp(scores: torch.Tensor, cfg: GenerationConfig) -> torch.Tensor:
    if cfg.strategy == "top_k":
        k = min(cfg.top_k, scores.shape[-1])
        threshold = torch.topk(scores, k)[0][..., -1, None]
        return scores.masked_fill(scores < threshold, float("-inf"))
    sorted_logits, sorted_indices = torch.sort(scores, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cumulative <= (1 - cfg.top_p)
    remove_sorted[..., -1:] = False
    remove = remove_sorted.scatter(1, sorted_indices, remove_sorted)
    return scores.masked_fill(remove, float("-inf"))


@torch.no_grad()
def generate(
    model: CoCa, image_tokens: torch.Tensor, cfg: GenerationConfig, prompt: torch.Tensor | None = None
) -> torch.Tensor:
    """Token ids [B, L]: start token first, end-of-text after the caption, ``pad_id`` after that.

    ``prompt`` ``[B, P]`` (start token first, no end token, one length for the batch) is fed before generating, as
    for VQA's ``question: ... answer:``; the returned ids begin with it. Greedy and sampling only.
    """
    if cfg.strategy == "beam" and prompt is not None:
        raise ValueError("a prompt is supported for greedy and sampling strategies, not beam search.")
    cfg.check_fits(model.cfg.text.context_length, 1 if prompt is None else prompt.shape[1])
    if cfg.decode_dtype == "bf16" and image_tokens.device.type == "cpu":
        hardware.warn_if_bf16_is_slow("decode_dtype=bf16")
    if cfg.strategy == "beam":
        return _beam_search(model, image_tokens, cfg)
    return _sample(model, image_tokens, cfg, prompt)


def _sample(
    model: CoCa, image_tokens: torch.Tensor, cfg: GenerationConfig, prompt: torch.Tensor | None
) -> torch.Tensor:
    t = model.cfg.text
    batch = image_tokens.shape[0]
    if prompt is None:
        prompt = torch.full((batch, 1), t.sot_id, dtype=torch.long, device=image_tokens.device)
    prompt_length = prompt.shape[1]
    max_len = prompt_length + cfg.max_new_tokens
    out = torch.full((batch, max_len), t.pad_id, dtype=torch.long, device=image_tokens.device)
    out[:, :prompt_length] = prompt
    generator = None
    if cfg.strategy != "greedy":
        generator = torch.Generator(device=image_tokens.device).manual_seed(cfg.seed)
    session = model.start_decoding(image_tokens, max_len, cfg.use_cache, dtype=DECODE_DTYPES[cfg.decode_dtype])
    active = torch.arange(batch, device=image_tokens.device)
    for position in range(prompt_length):
        logits = session.step(out[:, position])
    length = prompt_length
    while True:
        if length + 1 == max_len:  # the last position is forced to end-of-text, as in open_clip
            tokens = torch.full_like(active, t.eot_id)
        else:
            scores = _apply_min_length_and_repetition_penalty(
                logits.float(), out[active, :length], cfg, t.eot_id, prompt_length
            )
            if cfg.strategy == "greedy":
                tokens = scores.argmax(dim=-1)
            else:
                probs = F.softmax(_warp(scores, cfg) / cfg.temperature, dim=-1)
                tokens = torch.multinomial(probs, 1, generator=generator)[:, 0]
        out[active, length] = tokens
        length += 1
        running = (tokens != t.eot_id) & (tokens != t.pad_id)  # open_clip stops a row at EOS or pad
        if not bool(running.any()) or length == max_len:
            break
        if not bool(running.all()):
            keep = running.nonzero()[:, 0]
            active, tokens = active[keep], tokens[keep]
            session.select(keep)
        if length + 1 < max_len:  # a forced last token needs no logits
            logits = session.step(tokens)
    return out[:, :length]


class _Hypotheses:
    """Finished hypotheses of one (image, beam group); Hugging Face's ``BeamHypotheses`` (early_stopping=False)."""

    def __init__(self, size: int, length_penalty: float) -> None:
        self.size, self.length_penalty = size, length_penalty
        self.beams: list[tuple[float, torch.Tensor]] = []
        self.worst_score = 1e9

    def add(self, tokens: torch.Tensor, score_sum: float, generated_len: int) -> None:
        score = score_sum / (generated_len**self.length_penalty)
        if len(self.beams) < self.size or score > self.worst_score:
            self.beams.append((score, tokens))
            if len(self.beams) > self.size:
                ranked = sorted((s, i) for i, (s, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst_score = ranked[1][0]
            else:
                self.worst_score = min(score, self.worst_score)

    def is_done(self, best_score_sum: float, cur_len: int) -> bool:
        if len(self.beams) < self.size:
            return False
        return self.worst_score >= best_score_sum / cur_len**self.length_penalty


def _beam_search(model: CoCa, image_tokens: torch.Tensor, cfg: GenerationConfig) -> torch.Tensor:
    t = model.cfg.text
    device = image_tokens.device
    batch, beams, groups = image_tokens.shape[0], cfg.num_beams, cfg.num_beam_groups
    size = beams // groups
    max_len = cfg.max_new_tokens + 1
    session = model.start_decoding(
        image_tokens, max_len, cfg.use_cache, rows_per_image=beams, dtype=DECODE_DTYPES[cfg.decode_dtype]
    )
    input_ids = torch.full((batch * beams, 1), t.sot_id, dtype=torch.long, device=device)
    beam_scores = torch.full((batch, beams), -1e9, dtype=torch.float, device=device)
    beam_scores[:, ::size] = 0  # the first beam of each group starts alive, the others are copies held back
    beam_scores = beam_scores.view(-1)
    hyps = [[_Hypotheses(size, cfg.length_penalty) for _ in range(groups)] for _ in range(batch)]
    done = [[False] * groups for _ in range(batch)]
    logits = session.step(input_ids[:, 0]).float()
    offsets = torch.arange(batch, device=device)[:, None] * beams
    while True:
        cur_len = input_ids.shape[1]
        current_tokens = torch.zeros(batch * beams, dtype=torch.long, device=device)
        reorder = torch.zeros(batch * beams, dtype=torch.long, device=device)
        for g in range(groups):
            rows = (offsets + torch.arange(g * size, (g + 1) * size, device=device)).view(-1)
            group_ids = input_ids[rows]
            scores = logits[rows]
            if cfg.beam_score == "logprobs":
                scores = F.log_softmax(scores, dim=-1)
            scores = (
                _apply_min_length_and_repetition_penalty(scores, group_ids, cfg, t.eot_id) + beam_scores[rows, None]
            )
            vocab = scores.shape[-1]
            top_scores, top_ids = torch.topk(scores.view(batch, size * vocab), 2 * size, dim=1)
            next_scores, next_tokens, next_index = _process_group(
                hyps, done, g, size, group_ids, top_scores, top_ids // vocab, top_ids % vocab, cur_len + 1, t
            )
            beam_scores[rows] = next_scores
            input_ids[rows] = group_ids[next_index]
            current_tokens[rows] = next_tokens
            reorder[rows] = beams * (next_index // size) + g * size + next_index % size
        input_ids = torch.cat([input_ids, current_tokens[:, None]], dim=1)
        if all(all(d) for d in done) or input_ids.shape[1] >= max_len:
            break
        session.select(reorder)
        logits = session.step(current_tokens).float()
    return _finalize(hyps, done, input_ids, beam_scores, size, max_len, t)


def _process_group(hyps, done, g, size, group_ids, top_scores, top_index, top_tokens, cur_len, t):
    """One group's step of ``BeamSearchScorer.process``: move finished candidates to the hypotheses, keep the rest."""
    batch = top_scores.shape[0]
    next_scores = torch.zeros(batch, size, dtype=top_scores.dtype, device=top_scores.device)
    next_tokens = torch.zeros(batch, size, dtype=torch.long, device=top_scores.device)
    next_index = torch.zeros(batch, size, dtype=torch.long, device=top_scores.device)
    scores_l, index_l, tokens_l = top_scores.tolist(), top_index.tolist(), top_tokens.tolist()
    for b in range(batch):
        if done[b][g]:
            # a finished image keeps its rows in place (Hugging Face points them at row 0; the values are unused)
            next_tokens[b] = t.pad_id
            next_index[b] = torch.arange(b * size, (b + 1) * size)
            continue
        kept = 0
        for rank, (score, index, token) in enumerate(zip(scores_l[b], index_l[b], tokens_l[b])):
            row = b * size + index
            if token == t.eot_id:
                if rank >= size:
                    continue
                hyps[b][g].add(group_ids[row].clone(), score, cur_len)
            else:
                next_scores[b, kept] = top_scores[b, rank]
                next_tokens[b, kept] = token
                next_index[b, kept] = row
                kept += 1
            if kept == size:
                break
        done[b][g] = done[b][g] or hyps[b][g].is_done(max(scores_l[b]), cur_len)
    return next_scores.view(-1), next_tokens.view(-1), next_index.view(-1)


def _finalize(hyps, done, input_ids, beam_scores, size, max_len, t) -> torch.Tensor:
    batch, groups = len(hyps), len(hyps[0])
    final_scores = beam_scores.tolist()
    for b in range(batch):
        for g in range(groups):
            if done[b][g]:
                continue
            for s in range(size):
                row = b * groups * size + g * size + s
                hyps[b][g].add(input_ids[row], final_scores[row], input_ids.shape[1])
    best = []
    for b in range(batch):
        candidates = [beam for group in hyps[b] for beam in group.beams]
        best.append(sorted(candidates, key=lambda c: c[0])[-1][1])
    lengths = [len(seq) for seq in best]
    width = min(max(lengths) + 1, max_len)
    out = torch.full((batch, width), t.pad_id, dtype=torch.long, device=input_ids.device)
    for b, seq in enumerate(best):
        out[b, : len(seq)] = seq
        if len(seq) < width:
            out[b, len(seq)] = t.eot_id
    return out
