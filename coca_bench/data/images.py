"""Image loading with a single, recordable failure mode.

Decoding matches the reference pipelines (open_clip, CLIP_benchmark: ``Image.open(path).convert("RGB")``) exactly,
so embeddings compare with theirs: the file's content decides its format, not its suffix (PNG bytes named ``.jpg``
load); CMYK, greyscale, palette and RGBA images go through PIL's own ``convert("RGB")`` (alpha is dropped, 16-bit
greyscale is clipped to 255 as PIL does, not rescaled); and **EXIF orientation is not applied**: a phone photo
tagged "rotate 90" is encoded as stored, as the references do.

PIL's decompression-bomb guard stays on: an image over twice ``Image.MAX_IMAGE_PIXELS`` (179M pixels by default,
e.g. 20000 x 20000) is refused before decoding and becomes a recorded skip instead of a multi-GB allocation.
"""

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
        message = " ".join(str(exc).split())  # one line: the reason goes into a table and a one-line --strict error
        raise UnreadableMediaError(
            path, f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        ) from None


__all__ = ["load_image"]
