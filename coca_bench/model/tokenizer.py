"""Text tokenizer named by the checkpoint config. ``clip_bpe`` is open_clip's BPE (its vocabulary ships in the package)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .catalog import tokenizer_fingerprint


class ClipBpeTokenizer:
    name = "clip_bpe"

    def __init__(self, context_length: int, sot_id: int = 49406, eot_id: int = 49407, pad_id: int = 0) -> None:
        from open_clip.tokenizer import SimpleTokenizer

        self.context_length = context_length
        self.sot_id, self.eot_id, self.pad_id = sot_id, eot_id, pad_id
        self._bpe = SimpleTokenizer(context_length=context_length)
        self.fingerprint = tokenizer_fingerprint(self.name, context_length)

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        """[N, context_length] token ids: start, BPE tokens, end, padding (too-long texts are truncated)."""
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            raise ValueError("tokenizer got an empty list of texts; pass at least one non-empty string.")
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(
                    f"text {i} is empty or not a string ({text!r}); every text must be a non-empty string."
                )
        return self._bpe(list(texts), context_length=self.context_length)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The caption text: what lies between the start token and the first end token."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if ids and ids[0] == self.sot_id:
            ids = ids[1:]
        if self.eot_id in ids:
            ids = ids[: ids.index(self.eot_id)]
        return self._bpe.decode(ids).strip()

    def batch_decode(self, ids: torch.Tensor) -> list[str]:
        return [self.decode(row) for row in ids]


def build_tokenizer(name: str, context_length: int) -> ClipBpeTokenizer:
    if name != "clip_bpe":
        raise ValueError(f"Unknown tokenizer {name!r} in the checkpoint config; supported: ['clip_bpe'].")
    return ClipBpeTokenizer(context_length)
