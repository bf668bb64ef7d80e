"""The gate for untrusted input: what aborted the server is refused with one sentence, what is
valid but unusual (very tall, 16-bit, CMYK, animated) still works, boxes stay in original pixels."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from hostile_files import gif_frame_bomb, jpeg_sides, png_claims, png_sides
from PIL import Image

from facemask import gate
from facemask.detect import PHOTO, FaceDetector
from facemask.errors import ImageError, VideoError
from facemask.images import encode_image, load_image
from facemask.video import annotate_video

ASTRONAUT = Path(__file__).resolve().parent / "data" / "faces" / "astronaut.jpg"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_image(ASTRONAUT)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(PHOTO)


def test_the_jpeg_that_aborted_the_server_is_refused_in_one_sentence(photo) -> None:
    small = encode_image(np.ascontiguousarray(photo[:32, :128]), "JPEG")
    tall = jpeg_sides(small, 128, 32767)  # 2.5 KB; mediapipe's OpenCV aborted on it
    with pytest.raises(ImageError) as info:
        load_image(tall, name="tall.jpg")
    assert str(info.value) == (
        "tall.jpg is 128x32767 pixels; the longest side may be at most 30000 pixels."
    )


@pytest.mark.parametrize(
    "data, words",
    [
        (png_sides(encode_image(np.zeros((8, 8, 3), np.uint8)), 65535, 65535), "limit is 40 mega"),
        (png_claims(100_000, 100_000), "far too many pixels"),
        (png_claims(1, 30_000), "may differ at most 64 times"),
        (png_sides(encode_image(np.zeros((8, 8, 3), np.uint8)), 0, 8), "not a readable image"),
        (gif_frame_bomb(1500), "animation of 1500 frames"),
        (b"GIF89a" + b"\x00" * 20, "not a readable image"),
        (b"\x00" * 64, r"not a readable image \(JPEG, PNG, WebP, GIF or BMP\)"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a readable image"),
    ],
)
def test_hostile_headers_are_refused_before_decoding(data: bytes, words: str) -> None:
    with pytest.raises(ImageError, match=words) as info:
        load_image(data, name="x.png")
    message = str(info.value)
    assert message.startswith("x.png ") and message.endswith(".") and "\n" not in message


def test_unusual_but_valid_images_decode_to_rgb(photo) -> None:
    img = Image.fromarray(photo)
    gray16 = Image.fromarray(np.full((20, 30), 0x8000, np.uint16))
    frames = [img, img.rotate(90)]
    cases = {
        "16-bit gray": (gray16, "PNG", {}),
        "CMYK": (img.convert("CMYK"), "JPEG", {}),
        "palette": (img.convert("P"), "PNG", {}),
        "gray + alpha": (img.convert("LA"), "PNG", {}),
        "animated GIF": (frames[0], "GIF", {"save_all": True, "append_images": frames[1:]}),
        "BMP": (img, "BMP", {}),
    }
    for what, (image, fmt, options) in cases.items():
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        rgb = load_image(buffer.getvalue(), name=what)
        assert rgb.dtype == np.uint8 and rgb.shape == (*image.size[::-1], 3), what
    assert load_image(_png(gray16))[0, 0].tolist() == [128, 128, 128]  # top byte of 0x8000


def _png(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_very_tall_image_is_scaled_for_detection_with_boxes_in_original_pixels(
    photo, detector
) -> None:
    direct = detector.detect(photo)
    assert len(direct) == 1
    tall = np.full((20_000, 512, 3), 128, np.uint8)  # 39:1, longest side above 8192
    tall[15_000:15_512] = photo
    faces = detector.detect(tall)
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0].box
    dx1, dy1, dx2, dy2 = direct[0].box
    tolerance = 20_000 / gate.MAX_DETECT_SIDE * 4  # a few pixels of the scaled image
    assert abs(x1 - dx1) < tolerance and abs(x2 - dx2) < tolerance
    assert abs(y1 - (dy1 + 15_000)) < tolerance and abs(y2 - (dy2 + 15_000)) < tolerance


@pytest.mark.parametrize(
    "frame, words",
    [
        (np.zeros((8, 8, 3), np.float32), "not an RGB image"),
        (np.zeros((8, 8), np.uint8), "not an RGB image"),
        (np.zeros((8, 8, 4), np.uint8), "4 channels"),
        (np.zeros((0, 8, 3), np.uint8), "no pixels"),
        (np.zeros((1, 32767, 3), np.uint8), "at most 30000 pixels"),
    ],
)
def test_decoded_frames_are_checked(frame: np.ndarray, words: str) -> None:
    with pytest.raises(ImageError, match=words):
        gate.check_frame(frame)


def _clip(path: Path, codec: str, width: int, height: int, fmt: str | None = None) -> Path:
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=5)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if codec != "ffv1" else "yuv420p"
        for _ in range(2):
            frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), "rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_videos_are_probed_before_any_frame_is_decoded(tmp_path: Path) -> None:
    cases = [
        (_clip(tmp_path / "lossless.mkv", "ffv1", 64, 48), "uses the ffv1 video codec"),
        (_clip(tmp_path / "strip.avi", "mpeg4", 16, 1200), "may differ at most 64 times"),
    ]
    playlist = tmp_path / "playlist.mp4"  # FFmpeg would follow it to another file
    playlist.write_text(f"#EXTM3U\n#EXTINF:1,\n{cases[0][0]}\n#EXT-X-ENDLIST\n")
    cases.append((playlist, "not a readable video"))
    for path, words in cases:
        with pytest.raises(VideoError, match=words) as info:
            annotate_video(path, tmp_path / "out.mp4", pipeline=None)  # refused before use
        assert path.name in str(info.value) and str(info.value).endswith(".")
        assert not (tmp_path / "out.mp4").exists()


def test_a_dataset_scan_skips_hostile_files_with_their_sentence(photo, tmp_path: Path) -> None:
    from facemask.data import scan_dataset

    small = encode_image(np.ascontiguousarray(photo[:32, :128]), "JPEG")
    for label in ("with_mask", "without_mask"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "ok.png").write_bytes(encode_image(photo))
    (tmp_path / "with_mask" / "tall.jpg").write_bytes(jpeg_sides(small, 128, 32767))
    (tmp_path / "without_mask" / "bomb.png").write_bytes(png_claims(65535, 65535))
    scan = scan_dataset(tmp_path)
    assert len(scan.items) == 2
    assert dict(scan.skipped) == {
        "with_mask/tall.jpg": "with_mask/tall.jpg is 128x32767 pixels; "
        "the longest side may be at most 30000 pixels.",
        "without_mask/bomb.png": "without_mask/bomb.png claims far too many pixels; "
        "the limit is 40 megapixels.",
    }
