"""Log-likelihoods of candidate continuations (VQA answers) under the captioning decoder, prefix computed once.

Zero-shot VQA by ranking scores every candidate answer A by log p(A, end | image, prompt) for a prompt such as
``question: Q answer:``. The image and prompt prefix is the same for every candidate, so it is decoded once per image
with the KV cache; the caches are then replicated once per candidate and the candidates are teacher-forced together,
one position per step. Padding after a candidate's end token is fed but never scored.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .coca import CoCa


def _strip(row: torch.Tensor, end_id: int, keep_end: bool) -> list[int]:
    ids = row.tolist()
    end = ids.index(end_id)
    return ids[: end + 1] if keep_end else ids[:end]


@torch.no_grad()
def continuation_log_likelihoods(
    network: CoCa,
    image_tokens: torch.Tensor,
    prompt_ids: torch.Tensor,
    candidate_ids: torch.Tensor,
    end_id: int,
    pad_id: int,
) -> torch.Tensor:
    """``[B, C]`` summed log-probabilities of each candidate (its tokens and its end token) after each row's prompt.

    ``prompt_ids`` ``[B, L]`` and ``candidate_ids`` ``[C, L']`` are tokenizer outputs (start token, text, end token,
    padding): a prompt keeps its start token and text, a candidate its text and end token.
    """
    prompts = [_strip(row, end_id, keep_end=False) for row in prompt_ids]
    candidates = [_strip(row, end_id, keep_end=True)[1:] for row in candidate_ids]  # drop the start token
    longest = max(len(c) for c in candidates)
    context = network.cfg.text.context_length
    needed = max(len(p) for p in prompts) + longest
    if needed > context:
        raise ValueError(
            f"The longest prompt plus the longest candidate need {needed} positions but the text context length is "
            f"{context}; shorten the prompt template or the candidate answers."
        )
    device = image_tokens.device
    padded = torch.full((len(candidates), longest), pad_id, dtype=torch.long, device=device)
    for row, ids in enumerate(candidates):
        padded[row, : len(ids)] = torch.tensor(ids, device=device)
    scored = padded != pad_id
    out = torch.empty(len(prompts), len(candidates), device=device)
    for index, prompt in enumerate(prompts):
        session = network.start_decoding(image_tokens[index : index + 1], len(prompt) + longest)
        for token in prompt:  # the shared prefix, once
            logits = session.step(torch.tensor([token], device=device))
        session.select(torch.zeros(len(candidates), dtype=torch.long, device=device))
        logits = logits.expand(len(candidates), -1)
        total = torch.zeros(len(candidates), device=device)
        for position in range(longest):
            log_probs = F.log_softmax(logits.float(), dim=-1)
            token = padded[:, position]
            total += torch.where(scored[:, position], log_probs.gather(1, token[:, None])[:, 0], 0.0)
            if position + 1 < longest:
                logits = session.step(token)
        out[index] = total
    return out


@torch.no_grad()
def answer_log_likelihoods_reference(
    network: CoCa, pixels: torch.Tensor, prompt_ids: Sequence[list[int]], candidate_ids: Sequence[list[int]]
) -> torch.Tensor:
    """The same quantity from full teacher-forced passes, one per (image, candidate): slow, for tests."""
    context = network.cfg.text.context_length
    rows = []
    for index, prompt in enumerate(prompt_ids):
        row = []
        for candidate in candidate_ids:
            sequence = (prompt + candidate + [0] * context)[:context]
            tokens = torch.tensor([sequence])
            logits = network(pixels[index : index + 1], tokens)["logits"][0]
            log_probs = F.log_softmax(logits.float(), dim=-1)
            positions = range(len(prompt) - 1, len(prompt) - 1 + len(candidate))
            row.append(sum(float(log_probs[p, sequence[p + 1]]) for p in positions))
        rows.append(row)
    return torch.tensor(rows)


__all__ = ["answer_log_likelihoods_reference", "continuation_log_likelihoods"]
