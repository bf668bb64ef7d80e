"""Masks drawn onto bare faces from face landmarks: training data for `mask_worn_incorrectly`.

No permissively licensed set of real photos of masks worn wrong exists, so the project makes its
own, as MaskedFace-Net did: for each bare face it finds the 468 landmarks (facemask/face_mesh.py)
and draws a mask worn right (nose and mouth covered) or worn wrong (under the nose, over the mouth
only, on the chin), of one of three shapes (surgical, cloth, FFP2/N95) with a random colour,
pattern, folds, shading from the face's own light, ear loops, blur and a small rotation. Every
draw comes from numpy's generator seeded with (seed, image index), so a folder is remade exactly.

    python -m facemask.worn_masks SOURCE_DIR OUT_DIR [--seed 0] [--right-share 0.5]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facemask import MASKED, WORN_WRONG
from facemask import face_mesh as fm

PLACEMENTS: dict[str, str] = {
    "worn_right": MASKED,  # nose and mouth covered
    "under_nose": WORN_WRONG,  # top edge under the nose tip: the nose is out
    "mouth_only": WORN_WRONG,  # nose out and the chin too: the mask rides over the mouth
    "on_chin": WORN_WRONG,  # pulled down below the lower lip
}
WRONG_PLACEMENTS = tuple(k for k, v in PLACEMENTS.items() if v == WORN_WRONG)
WRONG_SHARES = (0.5, 0.2, 0.3)  # under the nose is the commonest way a mask is worn wrong
SHAPES = ("surgical", "cloth", "ffp2")
SURGICAL_COLOURS = (
    (168, 206, 230),
    (120, 170, 215),
    (240, 240, 240),
    (40, 40, 45),
    (235, 180, 200),
    (150, 210, 190),
)
FFP2_COLOURS = ((245, 245, 240), (225, 225, 220), (60, 60, 65), (200, 210, 225))
PATTERNS = ("plain", "stripes", "dots", "checks", "noise")
MANIFEST_FIELDS = ("file", "label", "source", "placement", "shape", "colour", "pattern", "face_box")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class MadeFace:
    """One drawn image and what was drawn."""

    image: np.ndarray  # RGB uint8, the source's size
    placement: str
    shape: str
    colour: tuple[int, int, int]
    pattern: str
    face_box: tuple[int, int, int, int]  # the landmarks' box after the rotation, in pixels


def _face_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Origin (nose tip), right axis and down axis of the face, in image pixels."""
    across = points[fm.EYE_LEFT_OUTER] - points[fm.EYE_RIGHT_OUTER]
    right = across / max(float(np.linalg.norm(across)), 1e-6)
    return points[fm.NOSE_TIP], right, np.array([-right[1], right[0]])


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def _edges(v: dict[int, float], placement: str, rng: np.random.Generator) -> tuple[float, float]:
    """The mask's top (at the centre line) and bottom edge, as heights in the face frame."""
    chin_drop = (v[fm.CHIN] - v[fm.NOSE_MID]) * rng.uniform(0.04, 0.16)
    bottom = v[fm.CHIN] + chin_drop
    if placement == "worn_right":
        top = _lerp(v[fm.NOSE_BRIDGE], v[fm.NOSE_MID], rng.uniform(0.35, 1.0))
    elif placement == "under_nose":
        top = _lerp(v[fm.NOSE_TIP], v[fm.SUBNASALE], rng.uniform(0.55, 1.1))
    elif placement == "mouth_only":
        top = _lerp(v[fm.SUBNASALE], v[fm.UPPER_LIP], rng.uniform(0.1, 0.6))
        bottom = _lerp(v[fm.LOWER_LIP], v[fm.CHIN], rng.uniform(0.3, 0.7))
    else:  # on_chin
        top = _lerp(v[fm.LOWER_LIP], v[fm.CHIN], rng.uniform(0.0, 0.35))
    return top, bottom


def _region(
    points: np.ndarray,
    shape_hw: tuple[int, int],
    placement: str,
    shape: str,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The mask's area (float 0..1) and each pixel's (u, v) in the face frame; the half-width."""
    origin, right, down = _face_frame(points)
    rel = points - origin
    u_all, v_all = rel @ right, rel @ down
    v = {
        i: float(v_all[i])
        for i in (
            fm.NOSE_BRIDGE,
            fm.NOSE_MID,
            fm.NOSE_TIP,
            fm.SUBNASALE,
            fm.UPPER_LIP,
            fm.LOWER_LIP,
            fm.CHIN,
        )
    }
    oval = np.array(fm.FACE_OVAL)
    half = float(np.abs(u_all[oval]).max())
    top, bottom = _edges(v, placement, rng)
    height, width = shape_hw
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    pu = (xs - origin[0]) * right[0] + (ys - origin[1]) * right[1]
    pv = (xs - origin[0]) * down[0] + (ys - origin[1]) * down[1]
    # the face outline, widened a little (a mask stands off the cheeks) and carried under the chin
    spread = rng.uniform(1.0, 1.08)
    ou, ov = u_all[oval] * spread, v_all[oval]
    lower = ov > v[fm.NOSE_TIP]
    ov = np.where(
        lower,
        ov
        + (bottom - v[fm.CHIN])
        * np.clip((ov - v[fm.NOSE_TIP]) / max(v[fm.CHIN] - v[fm.NOSE_TIP], 1e-6), 0, 1),
        ov,
    )
    outline = origin + np.outer(ou, right) + np.outer(ov, down)
    area = np.zeros((height, width), np.uint8)
    cv2.fillPoly(area, [np.round(outline).astype(np.int32)], 1)
    side = np.abs(pu) / max(half, 1e-6)
    if shape == "ffp2":  # a folded respirator: pointed top and bottom at the centre line
        top_curve = top + (v[fm.CHIN] - v[fm.NOSE_MID]) * rng.uniform(0.15, 0.3) * side**0.8
        bottom_curve = bottom - (bottom - top) * 0.12 * side**1.5
    else:
        bend = 0.05 if shape == "surgical" else rng.uniform(0.05, 0.2)
        top_curve = top + (v[fm.CHIN] - v[fm.NOSE_MID]) * bend * side**1.6
        bottom_curve = bottom - (bottom - top) * 0.08 * side**2
    inside = (area > 0) & (pv >= top_curve) & (pv <= bottom_curve)
    return inside.astype(np.float32), pu, pv, half


def _texture(
    pu: np.ndarray, pv: np.ndarray, half: float, shape: str, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[int, int, int], str]:
    """The mask's own colours before shading: (H, W, 3) float 0..255, its colour and pattern."""
    if shape == "surgical":
        colour, pattern = SURGICAL_COLOURS[rng.integers(len(SURGICAL_COLOURS))], "plain"
    elif shape == "ffp2":
        colour, pattern = FFP2_COLOURS[rng.integers(len(FFP2_COLOURS))], "plain"
    else:
        colour = tuple(int(c) for c in rng.integers(20, 240, 3))
        pattern = PATTERNS[rng.integers(len(PATTERNS))]
    base = np.ones((*pu.shape, 3), np.float32) * np.array(colour, np.float32)
    other = np.array(rng.integers(0, 255, 3), np.float32)
    period = half * rng.uniform(0.12, 0.3)
    angle = rng.uniform(0, np.pi)
    along = pu * np.cos(angle) + pv * np.sin(angle)
    if pattern == "stripes":
        mark = np.mod(along / period, 1.0) < 0.4
    elif pattern == "dots":
        mark = (np.mod(pu / period, 1) - 0.5) ** 2 + (np.mod(pv / period, 1) - 0.5) ** 2 < 0.06
    elif pattern == "checks":
        mark = (np.floor(pu / period) + np.floor(pv / period)) % 2 == 0
    else:
        mark = np.zeros(pu.shape, bool)
    base[mark] = base[mark] * 0.3 + other * 0.7
    if pattern == "noise":
        small = rng.normal(0, 28, (8, 8, 3)).astype(np.float32)
        base += cv2.resize(small, pu.shape[::-1], interpolation=cv2.INTER_CUBIC)
    grain = rng.uniform(2, 7)
    base += rng.normal(0, grain, base.shape).astype(np.float32)
    return base, colour, pattern


def _shading(
    rgb: np.ndarray,
    pu: np.ndarray,
    pv: np.ndarray,
    half: float,
    top: float,
    shape: str,
    area: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Light over the mask: the face's own light, a rounded front, pleats or folds."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    light = cv2.GaussianBlur(gray, (0, 0), max(half * 0.25, 1.0))
    mean = float(light[area > 0.5].mean()) if (area > 0.5).any() else float(light.mean())
    shade = np.clip(light / max(mean, 1.0), 0.6, 1.4) ** rng.uniform(0.4, 0.9)
    lean = rng.uniform(-0.3, 0.3)  # where the light comes from, across the face
    across = np.clip((pu / (half * 1.1)) - lean, -1, 1)
    shade *= 0.7 + 0.3 * np.sqrt(1 - across**2)
    if shape == "surgical":  # three pleats across the mask
        pitch = half * rng.uniform(0.16, 0.24)
        shade *= 1 - 0.13 * np.clip(np.sin((pv - top) / pitch * np.pi), 0, 1) ** 6
    elif shape == "ffp2":  # the seam down the middle
        shade *= 1 - 0.25 * np.exp(-((pu / (half * 0.03)) ** 2))
    folds = cv2.resize(
        rng.normal(0, 1, (5, 5)).astype(np.float32), pu.shape[::-1], interpolation=cv2.INTER_CUBIC
    )
    shade *= 1 + rng.uniform(0.02, 0.08) * folds
    return shade


def _ear_loops(
    image: np.ndarray,
    points: np.ndarray,
    area: np.ndarray,
    colour: tuple[int, int, int],
    half: float,
) -> None:
    """Thin loops from the mask's top sides towards the ears (surgical and FFP2)."""
    rows = np.nonzero(area.max(axis=1) > 0.5)[0]
    if not len(rows):
        return
    row = int(rows[0] + (rows[-1] - rows[0]) * 0.2)
    cols = np.nonzero(area[row] > 0.5)[0]
    if not len(cols):
        return
    thickness = max(1, int(round(half / 45)))
    tone = tuple(int(c * 0.9) for c in colour)
    for start, ear in ((cols[0], 234), (cols[-1], 454)):
        end = tuple(int(round(c)) for c in points[ear])
        cv2.line(image, (int(start), row), end, tone, thickness, cv2.LINE_AA)


def draw_mask(
    rgb: np.ndarray,
    points: np.ndarray,
    placement: str,
    rng: np.random.Generator,
    shape: str | None = None,
) -> MadeFace:
    """`rgb` with a mask drawn on the face whose 468 landmarks are `points`."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, not {placement!r}")
    shape = shape or SHAPES[rng.integers(len(SHAPES))]
    area, pu, pv, half = _region(points, rgb.shape[:2], placement, shape, rng)
    texture, colour, pattern = _texture(pu, pv, half, shape, rng)
    top = float(pv[area > 0.5].min()) if (area > 0.5).any() else 0.0
    shade = _shading(rgb, pu, pv, half, top, shape, area, rng)
    alpha = cv2.GaussianBlur(area, (0, 0), max(half * 0.015, 0.6))[..., None]
    out = rgb.astype(np.float32) * (1 - alpha) + np.clip(texture * shade[..., None], 0, 255) * alpha
    out = np.clip(out, 0, 255).astype(np.uint8)
    if shape != "cloth":
        _ear_loops(out, points, area, colour, half)
    if rng.random() < 0.4:  # a soft photo
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.4))
    height, width = out.shape[:2]
    angle = rng.uniform(-12, 12)
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    out = cv2.warpAffine(out, turn, (width, height), borderMode=cv2.BORDER_REFLECT_101)
    moved = np.hstack([points, np.ones((len(points), 1))]) @ turn.T
    x1, y1 = np.clip(moved.min(0), 0, [width - 1, height - 1]).astype(int)
    x2, y2 = np.clip(moved.max(0), 0, [width, height]).astype(int)
    return MadeFace(out, placement, shape, colour, pattern, (int(x1), int(y1), int(x2), int(y2)))


def face_points(rgb: np.ndarray, detector: object, mesh: fm.FaceMesh) -> np.ndarray | None:
    """Landmarks of the largest face the detector finds (else the whole image as the face)."""
    height, width = rgb.shape[:2]
    faces = detector.detect(rgb)  # type: ignore[attr-defined]
    if faces:
        face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        box = tuple(float(c) for c in face.box)
    else:
        box = (0.0, 0.0, float(width), float(height))
    return mesh.landmarks(rgb, box)


def make_dataset(
    source: Path, out: Path, seed: int = 0, right_share: float = 0.5, limit: int = 0, log=print
) -> dict[str, int]:
    """Write OUT/<label>/ images made from the bare faces in SOURCE, and OUT/manifest.csv.

    Each source image gives one face worn wrong (placement drawn at random) and, with probability
    `right_share`, one worn right. Images where no face landmarks are found are skipped. Returns
    the count per label and of skipped sources.
    """
    from facemask.detect import TRAINING, FaceDetector
    from facemask.images import ImageError, encode_image, load_image

    files = sorted(p for p in Path(source).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if limit:
        files = files[:limit]
    if not files:
        raise ValueError(f"{source} holds no images")
    counts: dict[str, int] = {"skipped": 0}
    rows = []
    mesh = fm.FaceMesh()
    with FaceDetector(TRAINING) as detector:
        for index, path in enumerate(files):
            rng = np.random.default_rng([seed, index])
            try:
                rgb = load_image(path)
            except ImageError:
                counts["skipped"] += 1
                continue
            points = face_points(rgb, detector, mesh)
            if points is None:
                counts["skipped"] += 1
                continue
            wanted = [WRONG_PLACEMENTS[rng.choice(len(WRONG_PLACEMENTS), p=WRONG_SHARES)]]
            if rng.random() < right_share:
                wanted.append("worn_right")
            for placement in wanted:
                made = draw_mask(rgb, points, placement, rng)
                label = PLACEMENTS[placement]
                name = f"{label}/{path.stem}_{placement}.jpg"
                (out / label).mkdir(parents=True, exist_ok=True)
                (out / name).write_bytes(encode_image(made.image, "JPEG", quality=90))
                counts[label] = counts.get(label, 0) + 1
                rows.append(
                    {
                        "file": name,
                        "label": label,
                        "source": path.name,
                        "placement": placement,
                        "shape": made.shape,
                        "colour": "#{:02x}{:02x}{:02x}".format(*made.colour),
                        "pattern": made.pattern,
                        "face_box": " ".join(map(str, made.face_box)),
                    }
                )
            if (index + 1) % 200 == 0:
                log(f"{index + 1}/{len(files)} source images")
    with open(out / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return counts


def contact_sheet(
    made: Path, per_kind: int = 48, tile: int = 64, columns: int = 8, seed: int = 0
) -> np.ndarray:
    """One panel per placement of `per_kind` face crops drawn at random from a made folder."""
    with open(made / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rng = np.random.default_rng(seed)
    panels = []
    for placement in PLACEMENTS:
        mine = [r for r in rows if r["placement"] == placement]
        chosen = [mine[i] for i in sorted(rng.permutation(len(mine))[:per_kind])]
        n_rows = -(-per_kind // columns)
        panel = np.full((28 + n_rows * tile, columns * tile, 3), 255, np.uint8)
        cv2.putText(
            panel,
            f"{placement} ({PLACEMENTS[placement]})",
            (6, 20),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.55,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        for k, row in enumerate(chosen):
            image = cv2.cvtColor(cv2.imread(str(made / row["file"])), cv2.COLOR_BGR2RGB)
            x1, y1, x2, y2 = (int(c) for c in row["face_box"].split())
            pad = int(0.15 * max(x2 - x1, y2 - y1))
            crop = image[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad]
            crop = crop if crop.size else image
            y, x = 28 + (k // columns) * tile, (k % columns) * tile
            panel[y : y + tile, x : x + tile] = cv2.resize(
                crop, (tile, tile), interpolation=cv2.INTER_AREA
            )
        panels.append(panel)
    gap = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
    top = np.hstack([panels[0], gap, panels[1]])
    bottom = np.hstack([panels[2], gap, panels[3]])
    return np.vstack([top, np.full((8, top.shape[1], 3), 255, np.uint8), bottom])


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: make a folder of drawn masks (and optionally its contact sheet)."""
    parser = argparse.ArgumentParser(
        prog="python -m facemask.worn_masks",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("source", type=Path, help="folder of bare-face images")
    parser.add_argument("out", type=Path, help="new folder: <label>/ images and manifest.csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--right-share",
        type=float,
        default=0.5,
        help="share of source images that also give a mask worn right",
    )
    parser.add_argument("--limit", type=int, default=0, help="first N source images (0: all)")
    parser.add_argument(
        "--combine", type=Path, help="also copy this dataset's class folders in (a training folder)"
    )
    parser.add_argument("--sheet", type=Path, help="also write a contact sheet PNG here")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        print(f"error: {args.out} exists and is not empty; choose a new folder", file=sys.stderr)
        return 2
    try:
        counts = make_dataset(args.source, args.out, args.seed, args.right_share, args.limit)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    if args.combine:
        for folder in sorted(p for p in args.combine.iterdir() if p.is_dir()):
            (args.out / folder.name).mkdir(exist_ok=True)
            for image in folder.iterdir():
                if image.suffix.lower() in IMAGE_SUFFIXES:
                    shutil.copy2(image, args.out / folder.name / image.name)
    if args.sheet:
        from PIL import Image

        sheet = Image.fromarray(contact_sheet(args.out, seed=args.seed))
        sheet.quantize(256, dither=Image.Dither.NONE).save(args.sheet, optimize=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
