"""One gate for untrusted input, passed before any native library sees the data.

Images, video files, decoded frames and training datasets all come through here. A C++ abort
in a native library (mediapipe's bundled OpenCV asserts `src.cols < SHRT_MAX` in `remap` and
aborts the whole process when a side reaches 32767) cannot be caught in Python and would take
the app down for every user, so the limits are checked on what the headers claim, before
decoding, and again on every decoded array. Outside the limits: a typed error with one sentence.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np
from PIL import Image

from facemask.errors import FacemaskError, ImageError, VideoError

MAX_IMAGE_BYTES = 25 * 1024 * 1024
"""Image files larger than this are refused before anything reads them."""
MAX_IMAGE_PIXELS = 40_000_000
"""Images claiming more pixels than this (about 7700 x 5200) are refused: decompression bombs.
The decoded RGB array is then at most 120 MB."""
MAX_SIDE = 30_000
"""Longest side accepted anywhere: safely below the 32767 at which mediapipe's OpenCV aborts."""
MAX_DETECT_SIDE = 8192
"""The detector sees images scaled down to this longest side (boxes are mapped back)."""
MAX_ASPECT_RATIO = 64
"""Longer side / shorter side: scaled to MAX_DETECT_SIDE, the short side keeps >= 128 px,
the short-range detector's input size (thinner strips cannot hold a findable face)."""
MAX_ANIMATION_FRAMES = 1000
"""Animated GIF / WebP / PNG: the first frame is used; more frames than this is a bomb."""
IMAGE_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "GIF": "GIF", "BMP": "BMP"}
"""The decoders PIL may use (by magic bytes, whatever the file's extension says)."""
IMAGE_FORMAT_NAMES = "{}, {}, {}, {} or {}".format(*IMAGE_FORMATS.values())
"""The accepted formats as a sentence names them: "JPEG, PNG, WebP, GIF or BMP"."""
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
"""File names taken as images (uploads, dataset folders); the bytes are checked all the same."""
IMAGE_MODES = frozenset(
    {"1", "L", "P", "RGB", "RGBA", "LA", "PA", "CMYK", "YCbCr", "RGBX", "I", "I;16", "I;16B"}
)
"""PIL pixel modes these formats decode to and load_image converts to RGB (16-bit scaled)."""
MAX_VIDEO_BYTES = 200 * 1024 * 1024
"""Video files larger than this are refused (the app's upload limit is the same)."""
MAX_VIDEO_SECONDS = 120.0
"""Only this many seconds of a longer video are processed (the summary says so)."""
MAX_VIDEO_FRAME_SIDE = 7680
"""Video frames up to 8K UHD (7680 x 4320) are accepted (facemask.video scales them down)."""
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".webm")
"""File names the Upload page takes as videos; the container is checked by its bytes."""
VIDEO_CODECS = frozenset(
    {"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg2video", "mpeg1video", "mjpeg", "theora"}
)
"""Video decoders allowed: what phones, browsers and cameras write."""

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # PIL refuses 2x this itself, whoever opens an image
# NOTE: PIL warns between 1x and 2x; check_image refuses those with a sentence, so the warning
# would only be noise on stderr.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

NOT_READABLE = f"not a readable image ({IMAGE_FORMAT_NAMES})"


def sniff_image(data: bytes, label: str) -> str:
    """The PIL format of an image by its magic bytes; ImageError for anything else."""
    if not data:
        raise ImageError(f"{label} is empty.")
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    raise ImageError(f"{label} is {NOT_READABLE}.")


def check_size(
    width: int,
    height: int,
    label: str,
    error: type[FacemaskError] = ImageError,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_side: int = MAX_SIDE,
) -> None:
    """Sides, aspect ratio and pixel count of an image or frame, before it is decoded."""
    size = f"{label} is {width}x{height} pixels"
    if width < 1 or height < 1:
        raise error(f"{size}; it has no pixels.")
    if width * height > max_pixels:
        raise error(f"{size}; the limit is {max_pixels / 1e6:.0f} megapixels.")
    if max(width, height) > max_side:
        raise error(f"{size}; the longest side may be at most {max_side} pixels.")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise error(f"{size}; the sides may differ at most {MAX_ASPECT_RATIO} times.")


def check_image(img: Image.Image, label: str, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """What an opened (not yet decoded) image's header claims: size, mode and frame count."""
    check_size(*img.size, label, max_pixels=max_pixels)
    if img.mode not in IMAGE_MODES:
        raise ImageError(f"{label} has a pixel format ({img.mode}) that is not supported.")
    frames = int(getattr(img, "n_frames", 1))  # GIF: counted by walking the frame headers
    if frames > MAX_ANIMATION_FRAMES:
        raise ImageError(
            f"{label} is an animation of {frames} frames; the limit is {MAX_ANIMATION_FRAMES}."
        )


def check_frame(
    rgb: np.ndarray, label: str = "The frame", error: type[FacemaskError] = ImageError
) -> np.ndarray:
    """A decoded array must be RGB uint8 (H, W, 3) within the size limits; returns it."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3:
        kind = f"{rgb.dtype} array of shape {rgb.shape}" if isinstance(rgb, np.ndarray) else rgb
        raise error(f"{label} is not an RGB image (got a {kind}).")
    if rgb.shape[2] != 3:
        raise error(f"{label} has {rgb.shape[2]} channels, not the 3 of RGB.")
    check_size(rgb.shape[1], rgb.shape[0], label, error)
    return rgb


def fit_side(rgb: np.ndarray, max_side: int = MAX_DETECT_SIDE) -> tuple[np.ndarray, float]:
    """The image scaled down so its longest side is at most max_side, and the scale used."""
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(width, height))
    if scale == 1.0:
        return rgb, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


# -- video --------------------------------------------------------------------------------
def sniff_video(head: bytes, label: str) -> str:
    """The FFmpeg demuxer for a video file by its first bytes: mov (MP4, MOV), matroska (WebM,
    MKV) or avi, never FFmpeg's own guess (its playlist and concat demuxers would open other
    files); VideoError for anything else."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"):
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    raise VideoError(
        f"{label} is not a readable video (MP4, MOV, AVI or WebM): "
        "its first bytes are those of none of them."
    )


def check_video_stream(stream, label: str) -> None:
    """Codec and frame size of a PyAV video stream, before any frame is decoded."""
    ctx = stream.codec_context
    codec = ctx.name or "unknown"
    if codec not in VIDEO_CODECS:
        allowed = ", ".join(sorted(VIDEO_CODECS))
        raise VideoError(f"{label} uses the {codec} video codec; supported: {allowed}.")
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    check_size(width, height, f"{label}'s video", VideoError, max_side=MAX_VIDEO_FRAME_SIDE)
