"""``CocaModel``: the handle tasks, tests and tools use (``load_model(spec)``, encode, generate, tokenizer, preprocess).

It validates inputs (clear ``ValueError``s instead of shape errors deep in the network) and owns device and
precision; the network itself stays a plain ``nn.Module``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import torch

from . import video
from .catalog import display_name, model_fingerprint
from .checkpoints import load_checkpoint
from .coca import CoCa
from .generation import GenerationConfig, generate
from .preprocess import build_preprocess, preprocess_fingerprint
from .scoring import continuation_log_likelihoods
from .tokenizer import build_tokenizer

PRECISIONS = ("fp32", "bf16", "fp16")


class CocaModel:
    def __init__(
        self,
        network: CoCa,
        tokenizer_name: str,
        name: str,
        spec: str,
        weights_sha256: str,
        device: str | torch.device = "cpu",
    ) -> None:
        self.network = network.eval()
        self.config = network.cfg
        self.name = display_name(name)
        self.spec = spec
        self.weights_sha256 = weights_sha256
        self.tokenizer = build_tokenizer(tokenizer_name, self.config.text.context_length)
        self.preprocess = build_preprocess(self.config.preprocess)
        self.preprocess_fingerprint = preprocess_fingerprint(self.config.preprocess)
        self.fingerprint = model_fingerprint(weights_sha256, self.config.to_json(), self.tokenizer.fingerprint)
        self.device = torch.device(device)
        self.network.to(self.device)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def to(self, device: str | torch.device) -> CocaModel:
        self.device = torch.device(device)
        self.network.to(self.device)
        return self

    @contextlib.contextmanager
    def autocast(self, precision: str = "fp32") -> Iterator[None]:
        """fp32, or bf16 / fp16 autocast where the device supports it."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}.")
        if precision == "fp32":
            yield
            return
        if precision == "fp16" and self.device.type == "cpu":
            raise ValueError("fp16 autocast is not supported on the CPU; use --precision bf16 or fp32.")
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        with torch.autocast(self.device.type, dtype=dtype):
            yield

    # ------------------------------------------------------------------------------------------------ validation
    def _pixels(self, pixels: torch.Tensor, video_input: bool = False) -> torch.Tensor:
        size = self.config.vision.image_size
        want = "[B, T, 3, H, W]" if video_input else "[B, 3, H, W]"
        dims = 5 if video_input else 4
        if not isinstance(pixels, torch.Tensor) or pixels.dim() != dims or not pixels.is_floating_point():
            got = tuple(pixels.shape) if isinstance(pixels, torch.Tensor) else type(pixels).__name__
            raise ValueError(
                f"expected a float pixel tensor {want} with H = W = {size}, got {got}; use model.preprocess."
            )
        if pixels.shape[-3] != 3:
            raise ValueError(f"expected 3 colour channels, got {pixels.shape[-3]} (shape {tuple(pixels.shape)}).")
        if pixels.shape[-2:] != (size, size):
            raise ValueError(
                f"expected images of {size}x{size} pixels, got {pixels.shape[-2]}x{pixels.shape[-1]}; use model.preprocess."
            )
        if pixels.shape[0] == 0:
            raise ValueError("expected at least one image, got an empty batch.")
        return pixels.to(self.device)

    def _tokens(self, ids: torch.Tensor) -> torch.Tensor:
        t = self.config.text
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype not in (torch.long, torch.int, torch.int32):
            raise ValueError("expected integer token ids of shape [B, L]; use model.tokenizer(texts).")
        if ids.shape[0] == 0 or ids.shape[1] == 0:
            raise ValueError(f"expected non-empty token ids, got shape {tuple(ids.shape)}; texts must not be empty.")
        if ids.shape[1] > t.context_length:
            raise ValueError(f"token ids are {ids.shape[1]} long; this model's context length is {t.context_length}.")
        if int(ids.min()) < 0 or int(ids.max()) >= t.vocab_size:
            raise ValueError(
                f"token ids must lie in [0, {t.vocab_size}); got values in [{int(ids.min())}, {int(ids.max())}]."
            )
        if bool((ids == t.pad_id).all(dim=1).any()):
            raise ValueError("a text is empty (all padding); every text must hold at least one token.")
        return ids.long().to(self.device)

    # ---------------------------------------------------------------------------------------------------- encode
    @torch.no_grad()
    def encode_image(self, pixels: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        return self.network.encode_image(self._pixels(pixels), normalize=normalize)

    @torch.no_grad()
    def encode_text(self, ids: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        return self.network.encode_text(self._tokens(ids), normalize=normalize)

    @torch.no_grad()
    def image_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """Image-encoder tokens before pooling [B, 1 + patches, width]; for probes."""
        return self.network.visual.tokens(self._pixels(pixels))

    @torch.no_grad()
    def decoder_image_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """The pooled image tokens the multimodal decoder cross-attends to [B, M, width]."""
        return self.network.image_features(self._pixels(pixels))[1]

    @torch.no_grad()
    def multimodal_features(self, pixels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Multimodal-decoder features [B, L, width] (after its final norm, before the vocabulary head)."""
        image_tokens = self.decoder_image_tokens(pixels)
        token_outputs = self.network.text(self._tokens(ids))[1]
        decoder = self.network.decoder
        return decoder.features(token_outputs, decoder.image_kv(image_tokens))

    @torch.no_grad()
    def encode_video(self, frames: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        return video.encode_video(self.network, self._pixels(frames, video_input=True), normalize)

    @torch.no_grad()
    def video_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        return video.video_tokens(self.network, self._pixels(frames, video_input=True))

    @torch.no_grad()
    def caption_loss(self, pixels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced captioning cross-entropy (padding ignored), as in open_clip's CoCaLoss without its weight."""
        return self.network.loss(self._pixels(pixels), self._tokens(ids))["caption_loss"]

    # -------------------------------------------------------------------------------------------------- generate
    @torch.no_grad()
    def generate(
        self, pixels: torch.Tensor, strategy: str = "beam", prompt: str | None = None, **options
    ) -> torch.Tensor:
        """Token ids [B, L] (start token first, ``pad_id`` after the end token). Options: see GenerationConfig.

        ``prompt``: text fed after the start token for every image before generating (greedy and sampling); the
        returned ids begin with the start token and the prompt.
        """
        cfg = GenerationConfig(strategy=strategy, **options)  # validates
        prompt_ids = None
        if prompt is not None:
            if strategy == "beam":
                raise ValueError("a prompt is supported for greedy and sampling strategies, not beam search.")
            ids = self.tokenizer([prompt])[0].tolist()
            prompt_ids = torch.tensor([ids[: ids.index(self.tokenizer.eot_id)]] * pixels.shape[0], device=self.device)
        cfg.check_fits(self.config.text.context_length, 1 if prompt_ids is None else prompt_ids.shape[1])
        image_tokens = self.network.image_features(self._pixels(pixels))[1]
        return generate(self.network, image_tokens, cfg, prompt_ids)

    @torch.no_grad()
    def answer_log_likelihoods(self, pixels: torch.Tensor, prompts: list[str], candidates: list[str]) -> torch.Tensor:
        """``[B, C]``: log p(candidate, end | image b, prompt b) under the captioning decoder, for ranking answers.

        Each image's prompt prefix is decoded once with the KV cache and shared by every candidate.
        """
        if len(prompts) != pixels.shape[0]:
            raise ValueError(f"expected one prompt per image ({pixels.shape[0]}), got {len(prompts)}.")
        image_tokens = self.network.image_features(self._pixels(pixels))[1]
        t = self.tokenizer
        return continuation_log_likelihoods(
            self.network, image_tokens, t(prompts).to(self.device), t(candidates).to(self.device), t.eot_id, t.pad_id
        )

    @torch.no_grad()
    def generate_video(
        self, frames: torch.Tensor, pooling: str = "mean", strategy: str = "beam", **options
    ) -> torch.Tensor:
        """Token ids [B, L] captioning videos [B, T, 3, H, W]: the decoder attends to the frames' decoder image
        tokens pooled over time (``mean``) or concatenated (``concat``); see :func:`video.video_decoder_tokens`."""
        cfg = GenerationConfig(strategy=strategy, **options)
        cfg.check_fits(self.config.text.context_length)
        tokens = video.video_decoder_tokens(self.network, self._pixels(frames, video_input=True), pooling)
        return generate(self.network, tokens, cfg)

    def caption(self, pixels: torch.Tensor, strategy: str = "beam", **options) -> list[str]:
        return self.tokenizer.batch_decode(self.generate(pixels, strategy, **options))


def load_model(spec: str, device: str | torch.device = "cpu", name: str | None = None) -> CocaModel:
    """``spec``: a bundled checkpoint name, ``open_clip:<arch>:<file-or-tag>``, or a native checkpoint folder."""
    loaded = load_checkpoint(spec)
    return CocaModel(loaded.network, loaded.tokenizer, name or loaded.name, spec, loaded.weights_sha256, device)


def from_network(network: CoCa, name: str = "in-memory", tokenizer: str = "clip_bpe") -> CocaModel:
    """Wrap a network built in Python (tests, training scripts); its fingerprint hashes the weights."""
    digest = hashlib.sha256()
    for key, value in sorted(network.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return CocaModel(network, tokenizer, name, f"memory:{name}", digest.hexdigest())
