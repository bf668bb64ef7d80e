"""Safe image decoding: real photos work, hostile or broken input gets one clear sentence."""

import io

import numpy as np
import pytest
from PIL import Image

from facemask.errors import ImageError
from facemask.images import encode_image, load_image


def test_real_photo_decodes_to_rgb(face_images):
    rgb = load_image(face_images[0])
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", exif=exif)
    assert load_image(buffer.getvalue()).shape[:2] == (40, 20)


def test_transparent_png_is_flattened_on_white():
    img = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    assert load_image(buffer.getvalue()).min() == 255


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"%PDF-1.4 not an image at all", "not a readable image"),
        (encode_image(np.zeros((64, 64, 3), np.uint8), "JPEG")[:200], "not a readable image"),
    ],
)
def test_bad_bytes_raise_one_sentence(data, words):
    with pytest.raises(ImageError, match=words):
        load_image(data, name="upload.jpg")


def test_too_many_pixels_is_refused_before_decoding():
    png = encode_image(np.zeros((200, 300, 3), np.uint8))
    with pytest.raises(ImageError, match="200 pixels; the limit"):
        load_image(png, name="big.png", max_pixels=300 * 199)


def test_too_many_bytes_is_refused(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(encode_image(np.zeros((50, 50, 3), np.uint8)))
    with pytest.raises(ImageError, match="the limit is"):
        load_image(path, max_bytes=10)


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA"])
def test_decoded_rows_are_the_image_whatever_its_mode(mode):
    """Decoding copies the image over in bands of rows: every band must land in its place."""
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (1531, 1203, 3), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    expected = img.convert("RGBA")
    flat = Image.new("RGB", img.size, (255, 255, 255))
    flat.paste(expected, mask=expected.getchannel("A"))
    assert np.array_equal(load_image(buffer.getvalue()), np.asarray(flat))


def test_a_big_photo_decodes_without_copies_of_itself():
    """The decoded array is built in place: Python-side memory (traced) stays near its size,
    not three times it as Pillow's tobytes() + np.asarray made it (bench/upload_memory.py)."""
    import tracemalloc

    img = Image.fromarray(np.random.default_rng(2).integers(0, 256, (2400, 3200, 3), np.uint8))
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    tracemalloc.start()
    try:
        rgb = load_image(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rgb.shape == (2400, 3200, 3)
    assert peak < 1.6 * rgb.nbytes, f"decoding peaked at {peak / rgb.nbytes:.2f}x the image"
