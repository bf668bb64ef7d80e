"""Hostile image files for the fuzz tests, generated deterministically from real photos.

`generate(seed)` returns over a thousand files: headers claiming sides of 0 / 32767 / 65535 and
extreme aspect ratios, bit flips and byte mutations of real JPEG / PNG / WebP / GIF / BMP files,
truncations, decompression bombs (tiny files claiming huge pixel counts, PNG zlib bombs, frame
bombs), wrong extensions, zero bytes, random bytes, and a few valid but unusual images (16-bit,
CMYK, palette, animated, very tall) that must still work. `worst()` is a short list of the most
dangerous ones for the browser test.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

FACES = Path(__file__).resolve().parent / "data" / "faces"
BASE_PHOTOS = ("astronaut.jpg", "without_mask_00597.jpg")
BASE_SIDE = 96
"""Base images are scaled to this side: detection on each mutated file stays cheap."""


@dataclass(frozen=True)
class Hostile:
    """One generated file: its name (the extension may lie), bytes, family and what must happen."""

    name: str
    data: bytes
    kind: str
    expect: str  # "result" (must be processed), "error" (must be refused), "either"


def _encode(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def base_images() -> dict[str, bytes]:
    """Small real photos in every format the gate admits (the seeds of every mutation)."""
    out: dict[str, bytes] = {}
    for i, name in enumerate(BASE_PHOTOS):
        img = Image.open(FACES / name).convert("RGB").resize((BASE_SIDE, BASE_SIDE))
        out[f"p{i}.jpg"] = _encode(img, "JPEG", quality=85)
        out[f"p{i}-progressive.jpg"] = _encode(img, "JPEG", quality=85, progressive=True)
        out[f"p{i}.png"] = _encode(img, "PNG")
        out[f"p{i}.webp"] = _encode(img, "WEBP", quality=80)
        out[f"p{i}-lossless.webp"] = _encode(img, "WEBP", lossless=True)
        out[f"p{i}.gif"] = _encode(img.convert("P"), "GIF")
        out[f"p{i}.bmp"] = _encode(img, "BMP")
        frames = [img, img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
        out[f"p{i}-animated.webp"] = _encode(frames[0], "WEBP", save_all=True,
                                             append_images=frames[1:])  # fmt: skip
    return out


# -- header edits --------------------------------------------------------------------------
def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_sides(data: bytes, width: int, height: int, fix_crc: bool = True) -> bytes:
    """A PNG whose IHDR claims width x height (CRC fixed, or left stale)."""
    out = bytearray(data)
    out[16:24] = struct.pack(">II", width, height)
    if fix_crc:
        out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    return bytes(out)


def jpeg_sides(data: bytes, width: int, height: int) -> bytes:
    """A JPEG whose SOF marker (baseline or progressive) claims width x height."""
    out = bytearray(data)
    for marker in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2"):
        at = out.find(marker)
        if at > 0:
            out[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(out)
    raise ValueError("no SOF marker")


def gif_sides(data: bytes, width: int, height: int) -> bytes:
    """A GIF whose logical screen and first image descriptor claim width x height."""
    out = bytearray(data)
    out[6:10] = struct.pack("<HH", width, height)
    flags = out[10]
    at = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    while at < len(out) and out[at] == 0x21:  # skip extension blocks
        at += 2
        while out[at]:
            at += out[at] + 1
        at += 1
    if at < len(out) and out[at] == 0x2C:
        out[at + 5 : at + 9] = struct.pack("<HH", width, height)
    return bytes(out)


def webp_sides(data: bytes, width: int, height: int) -> bytes:
    """A WebP whose first chunk (VP8, VP8L or VP8X canvas) claims width x height."""
    out = bytearray(data)
    chunk = bytes(out[12:16])
    if chunk == b"VP8 ":
        out[26:30] = struct.pack("<HH", width & 0x3FFF, height & 0x3FFF)
    elif chunk == b"VP8L":
        bits = ((width - 1) & 0x3FFF) | (((height - 1) & 0x3FFF) << 14)
        bits |= struct.unpack("<I", out[21:25])[0] & ~0x0FFFFFFF
        out[21:25] = struct.pack("<I", bits & 0xFFFFFFFF)
    elif chunk == b"VP8X":
        out[24:27] = ((width - 1) & 0xFFFFFF).to_bytes(3, "little")
        out[27:30] = ((height - 1) & 0xFFFFFF).to_bytes(3, "little")
    return bytes(out)


def bmp_sides(data: bytes, width: int, height: int) -> bytes:
    """A BMP whose info header claims width x height (negative height: top-down)."""
    out = bytearray(data)
    out[18:26] = struct.pack("<ii", width, height)
    return bytes(out)


SIDE_EDITORS = {".jpg": jpeg_sides, ".png": png_sides, ".gif": gif_sides,
                ".webp": webp_sides, ".bmp": bmp_sides}  # fmt: skip
CLAIMED_SIDES = [
    (32767, 128), (128, 32767), (32768, 96), (96, 32768), (65535, 65535), (65535, 96),
    (96, 65535), (0, 96), (96, 0), (0, 0), (1, 1), (1, 30000), (30000, 1), (32766, 1),
    (20000, 20000), (8000, 6000), (32767, 32767), (16384, 16384), (40000, 1000),
]  # fmt: skip
"""Claimed by every base file: each is refused from the header, or is tiny."""
LARGE_ALLOWED_SIDES = {"p0.jpg": (30000, 470), "p0.png": (96, 6000), "p0.gif": (6000, 96)}
"""Within the limits but large (decoded, scaled for detection): one per format, they are slow."""


# -- bombs ---------------------------------------------------------------------------------
def png_zlib_bomb(width: int, height: int, mode: str = "L") -> bytes:
    """A real, valid PNG of width x height zero pixels: a few KB that decode to megabytes."""
    channels = {"L": 1, "RGB": 3}[mode]
    color = {"L": 0, "RGB": 2}[mode]
    row = b"\x00" * (1 + width * channels)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body)
            + _png_chunk(b"IEND", b""))  # fmt: skip


def png_claims(width: int, height: int) -> bytes:
    """A 100-byte PNG whose header claims width x height and whose data is almost nothing."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + idat + _png_chunk(b"IEND", b"")


def gif_frame_bomb(frames: int) -> bytes:
    """A tiny GIF of many 1x1 frames (counting them means walking every frame header)."""
    head = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return head + frame * frames + b"\x3b"


def apng_claims(frames: int, image: bytes) -> bytes:
    """A PNG with an acTL chunk claiming `frames` frames (one is present)."""
    actl = _png_chunk(b"acTL", struct.pack(">II", frames, 0))
    return image[:33] + actl + image[33:]


# -- valid but unusual images --------------------------------------------------------------
def unusual_valid(photo: Image.Image) -> list[tuple[str, bytes]]:
    """Images that are valid and within the limits: each must give a result."""
    gray16 = np.asarray(photo.convert("L"), dtype=np.uint16) * 257
    tall = photo.resize((200, 12000))  # 60:1, longest side above the detection scale
    wide = photo.resize((9000, 300))
    frames = [photo, photo.rotate(90), photo.rotate(180)]
    return [
        ("gray16.png", _encode(Image.fromarray(gray16), "PNG")),
        ("cmyk.jpg", _encode(photo.convert("CMYK"), "JPEG")),
        ("palette.png", _encode(photo.convert("P"), "PNG")),
        ("gray-alpha.png", _encode(photo.convert("LA"), "PNG")),
        ("rgba.webp", _encode(photo.convert("RGBA"), "WEBP")),
        ("bilevel.bmp", _encode(photo.convert("1"), "BMP")),
        ("animated.gif", _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])),
        ("animated.png", _encode(frames[0], "PNG", save_all=True, append_images=frames[1:])),
        ("one-pixel.png", _encode(photo.resize((1, 1)), "PNG")),
        ("tall.png", _encode(tall, "PNG")),
        ("wide.jpg", _encode(wide, "JPEG")),
        ("big-zeros.png", png_zlib_bomb(4000, 3000)),  # 12 megapixels from 12 KB
    ]


# -- mutations -----------------------------------------------------------------------------
def flip_bits(data: bytes, rng: random.Random, flips: int, region: int | None) -> bytes:
    out = bytearray(data)
    for _ in range(flips):
        at = rng.randrange(min(region or len(out), len(out)))
        out[at] ^= 1 << rng.randrange(8)
    return bytes(out)


def overwrite(data: bytes, rng: random.Random, count: int, region: int) -> bytes:
    out = bytearray(data)
    for _ in range(count):
        at = rng.randrange(min(region, len(out)))
        out[at] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    return bytes(out)


def generate(seed: int = 0) -> list[Hostile]:
    """Over a thousand hostile files, the same ones for the same seed."""
    rng = random.Random(seed)
    bases = base_images()
    photo = Image.open(io.BytesIO(bases["p0.png"])).convert("RGB")
    files: list[Hostile] = []

    def add(name: str, data: bytes, kind: str, expect: str = "either") -> None:
        files.append(Hostile(f"{len(files):04d}-{name}", data, kind, expect))

    for name, data in bases.items():
        add(name, data, "valid", "result")
    for name, data in unusual_valid(photo):
        add(name, data, "valid-unusual", "result")

    for name, data in bases.items():  # headers claiming other sides
        editor = SIDE_EDITORS[Path(name).suffix]
        for width, height in CLAIMED_SIDES:
            fatal = max(width, height) >= 32767 or min(width, height) == 0
            expect = "error" if fatal and "webp" not in name else "either"
            add(f"sides-{width}x{height}-{name}", editor(data, width, height), "sides", expect)
        if name in LARGE_ALLOWED_SIDES:
            add(f"sides-large-{name}", editor(data, *LARGE_ALLOWED_SIDES[name]), "sides")
        if name.endswith(".png"):
            add(f"stale-crc-{name}", png_sides(data, 128, 32767, fix_crc=False), "sides")

    for w, h in [(20000, 20000), (65535, 65535), (8000, 6000), (1, 30000), (100_000, 100_000)]:
        add(f"claims-{w}x{h}.png", png_claims(w, h), "bomb", "error")
    for w, h in [(8000, 6000), (1, 40000), (7000, 7000)]:
        add(f"zlib-bomb-{w}x{h}.png", png_zlib_bomb(w, h), "bomb", "error")
    add("gif-frames-5000.gif", gif_frame_bomb(5000), "bomb", "error")
    add("apng-claims-1e9-frames.png", apng_claims(10**9, bases["p0.png"]), "bomb", "error")

    one_byte = bytearray(bases["p1.jpg"])  # what the fuzzer found: 1 byte, width 96 -> 65376
    one_byte[one_byte.find(b"\xff\xc0") + 7] = 0xFF
    add("one-byte-sof-width-p1.jpg", bytes(one_byte), "mutate", "error")

    names = sorted(bases)
    for i in range(400):  # bit flips, mostly in the headers
        name = names[i % len(names)]
        region = 600 if i % 3 else None
        flipped = flip_bits(bases[name], rng, rng.choice((1, 1, 2, 4, 8)), region)
        add(f"bitflip-{i}-{name}", flipped, "bitflip")
    for i in range(260):  # header bytes overwritten
        name = names[i % len(names)]
        add(f"mutate-{i}-{name}", overwrite(bases[name], rng, rng.randint(1, 6), 400), "mutate")
    for i in range(120):  # truncations
        name = names[i % len(names)]
        data = bases[name]
        add(f"truncated-{i}-{name}", data[: rng.randrange(1, len(data))], "truncated")
    wrong = {".jpg": ".png", ".png": ".webp", ".webp": ".jpg", ".gif": ".jpg", ".bmp": ".png"}
    for name in names:  # valid files under another format's name
        add(f"wrong-ext-{Path(name).stem}{wrong[Path(name).suffix]}", bases[name],
            "wrong-extension", "result")  # fmt: skip
    add("empty.jpg", b"", "zero-bytes", "error")
    for size in (1, 16, 1024, 65536):
        add(f"zeros-{size}.png", b"\x00" * size, "zero-bytes", "error")
    magics = [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP",
              b"GIF89a", b"BM"]  # fmt: skip
    for i in range(60):
        magic = magics[i % len(magics)]
        noise = rng.randbytes(rng.choice((8, 64, 512, 4096)))
        add(f"random-{i}.jpg", magic + noise, "random", "either" if magic else "error")
    return files


def worst() -> list[Hostile]:
    """Five files that aborted the server before the gate, a bomb and a broken file."""
    chosen = {
        "sides-128x32767-p0.jpg", "sides-96x65535-p0.png", "sides-128x32767-p0-animated.webp",
        "zlib-bomb-1x40000.png", "one-byte-sof-width-p1.jpg", "claims-20000x20000.png",
        "truncated-0-p0-animated.webp",
    }  # fmt: skip
    return [f for f in generate() if f.name.split("-", 1)[1] in chosen]


def write(files: list[Hostile], folder: Path) -> list[Path]:
    """Write the files into folder; returns their paths in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in files:
        path = folder / f.name
        path.write_bytes(f.data)
        paths.append(path)
    return paths
