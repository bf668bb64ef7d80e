"""Safe image decoding: one place that turns bytes or a file into an RGB uint8 array."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facemask.errors import ImageError

MAX_IMAGE_BYTES = 25 * 1024 * 1024
"""Uploads larger than this are refused before decoding."""
MAX_IMAGE_PIXELS = 40_000_000
"""Images with more pixels than this (about 7700 x 5200) are refused: decompression bombs."""
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def load_image(
    source: bytes | str | os.PathLike,
    *,
    name: str | None = None,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> np.ndarray:
    """Decode an image to RGB uint8 (H, W, 3), honouring EXIF orientation.

    Raises ImageError with one sentence for anything that is not a usable image.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "the upload")
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ImageError(f"{label} could not be read: {exc.strerror or exc}.") from exc
        if size > max_bytes:
            raise ImageError(
                f"{label} is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB."
            )
        data = path.read_bytes()
    if len(data) > max_bytes:
        raise ImageError(
            f"{label} is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB."
        )
    if not data:
        raise ImageError(f"{label} is empty.")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                limit = f"{max_pixels / 1e6:.0f} megapixels"
                raise ImageError(f"{label} is {width}x{height} pixels; the limit is {limit}.")
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA") or "transparency" in img.info:
                rgba = img.convert("RGBA")  # flatten transparency onto white, like the dataset
                img = Image.new("RGB", img.size, (255, 255, 255))
                img.paste(rgba, mask=rgba.getchannel("A"))
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{label} has too many pixels to be decoded safely.") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{label} is not a readable image (JPEG, PNG or WebP).") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        reason = str(exc).split(" (")[0].rstrip(".").lower() or "corrupt data"
        raise ImageError(f"{label} is not a readable image (JPEG, PNG or WebP): {reason}.") from exc
    if rgb.ndim != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ImageError(f"{label} has no pixels.")
    return np.ascontiguousarray(rgb)


def encode_image(rgb: np.ndarray, fmt: str = "PNG", quality: int = 92) -> bytes:
    """Encode an RGB uint8 array as PNG or JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, quality=quality)
    return buffer.getvalue()
