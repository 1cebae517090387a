"""Image loading with a single, recordable failure mode."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from coca_bench.data.media import UnreadableMediaError


def load_image(path: Path | str) -> Image.Image:
    """The image at ``path`` fully decoded as RGB; :class:`UnreadableMediaError` if that fails.

    Decoding happens here (``load``), not lazily later, so a truncated file fails at
    the place that can record it as a skip.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except FileNotFoundError:
        raise UnreadableMediaError(path, "file not found") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UnreadableMediaError(path, f"{type(exc).__name__}: {exc}") from None


__all__ = ["load_image"]
