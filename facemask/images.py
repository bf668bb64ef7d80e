"""Safe image decoding: one place that turns bytes or a file into an RGB uint8 array."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facemask import gate
from facemask.errors import ImageError
from facemask.gate import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS

_DECODE_ERRORS = (
    OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
    ZeroDivisionError, struct.error,
)  # fmt: skip
"""What PIL raises on truncated or corrupt data (its parsers are Python: found by fuzzing)."""


def load_image(
    source: bytes | str | os.PathLike,
    *,
    name: str | None = None,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> np.ndarray:
    """Decode an image to RGB uint8 (H, W, 3), honouring EXIF orientation.

    The one decode entry: facemask.gate checks the format (magic bytes), the header's size,
    mode and frame count before PIL decodes, and the decoded array after. Animations give
    their first frame. Raises ImageError with one sentence for anything that is not a usable
    image.
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
    fmt = gate.sniff_image(data, label)
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            gate.check_image(img, label, max_pixels)
            img.load()  # the first frame of an animation
            ImageOps.exif_transpose(img, in_place=True)  # no copy when already upright
            rgb = _to_rgb(img)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # PIL's own check, at twice our limit
        limit = f"{max_pixels / 1e6:.0f} megapixels"
        raise ImageError(f"{label} claims far too many pixels; the limit is {limit}.") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{label} is {gate.NOT_READABLE}.") from exc
    except _DECODE_ERRORS as exc:  # truncated or corrupt data
        reason = str(exc).split(" (")[0].rstrip(".").lower() or "corrupt data"
        reason = reason.splitlines()[0][:120] if reason else "corrupt data"
        raise ImageError(f"{label} is {gate.NOT_READABLE}: {reason}.") from exc
    except MemoryError as exc:
        raise ImageError(f"{label} needs more memory to decode than the server has.") from exc
    return gate.check_frame(np.ascontiguousarray(rgb), label)


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Any mode the gate admits as RGB uint8: transparency on white, 16-bit scaled to 8."""
    if img.mode in ("I", "I;16", "I;16B"):
        gray = np.asarray(img).astype(np.uint32) >> 8  # 16-bit gray PNG: keep the top byte
        return np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")  # flatten transparency onto white, like the dataset
        img = Image.new("RGB", img.size, (255, 255, 255))
        img.paste(rgba, mask=rgba.getchannel("A"))
    return _rgb_array(img if img.mode == "RGB" else img.convert("RGB"))


_BAND_BYTES = 4 * 2**20


def _rgb_array(img: Image.Image) -> np.ndarray:
    """An RGB image as a (H, W, 3) array, copied over in bands of rows.

    Why not np.asarray(img): Pillow builds the whole image as bytes in chunks and joins them,
    so a 24-megapixel photo briefly needs its size three times over beside the decoded image
    (bench/upload_memory.py). In bands it needs it once.
    """
    width, height = img.size
    rgb = np.empty((height, width, 3), np.uint8)
    rows = max(1, _BAND_BYTES // max(1, width * 3))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        rgb[top:bottom] = np.asarray(img.crop((0, top, width, bottom)))
    return rgb


def encode_image(rgb: np.ndarray, fmt: str = "PNG", quality: int = 92) -> bytes:
    """Encode an RGB uint8 array as PNG or JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, quality=quality)
    return buffer.getvalue()
