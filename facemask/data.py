"""Datasets: scan and validate a folder of class folders, split it without leakage, and turn
every image into a face crop (the TRAINING detector preset, the app's cropper and margin rule).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facemask.classify import CROP_MARGIN, crop_margin
from facemask.detect import TRAINING, FaceDetector
from facemask.errors import DatasetError, ImageError
from facemask.files import REPO_ROOT, read_json, write_bytes, write_json
from facemask.gate import IMAGE_EXTENSIONS
from facemask.images import load_image
from facemask.pipeline import crop_faces
from facemask.progress import ProgressCallback

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
"""Each class's share of images in each split (near-duplicate groups stay whole)."""
THUMB_SIZE = 16
DUPLICATE_RMS = 24.0 / 255.0
"""Two images whose 16x16 grey thumbnails (or one's mirror image) differ by less than this RMS
are near-duplicates and always land in the same split."""
CACHE_DIR = Path(os.environ.get("FACEMASK_CACHE_DIR", REPO_ROOT / "cache"))
CROP_STORE_SIZE = 224
"""Crops are cached at this size and resized to the model's input size when loaded."""
DETECT_PAD = 0.4
"""Tight face-crop photos give the detector no context; a second try pads them by this much."""

MIN_IMAGES_PER_CLASS = 10
"""Fewer images of a class than this cannot fill a training, a validation and a test split."""
MIN_SPLIT_PER_CLASS = {"train": 5, "val": 1, "test": 1}
"""Images of each class each split needs before a training starts."""
MIN_MEASURED_PER_CLASS = 2
"""A run whose test split holds fewer images of a class than this is not served: its test
metrics (one image right is "100% accuracy") would measure nothing."""


@dataclass
class Item:
    """One usable image of the dataset."""

    path: Path
    label: int
    digest: str
    thumb: np.ndarray = field(repr=False)


@dataclass
class DatasetScan:
    """What a dataset folder holds: usable images, their labels, and what was skipped and why."""

    root: Path
    labels: tuple[str, ...]
    items: list[Item]
    skipped: list[tuple[str, str]]

    def counts(self) -> dict[str, int]:
        return {
            name: sum(1 for it in self.items if it.label == i) for i, name in enumerate(self.labels)
        }

    def summary(self) -> str:
        parts = ", ".join(f"{n} {name}" for name, n in self.counts().items())
        return f"{len(self.items)} images ({parts}); {len(self.skipped)} files skipped"


def find_classes(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def check_classes(root: Path, labels: Sequence[str] | None = None) -> tuple[str, ...]:
    """The class folders of a dataset folder; DatasetError when it is not one."""
    if not root.is_dir():
        raise DatasetError(f"The dataset folder {root} does not exist.")
    found = find_classes(root)
    labels = tuple(labels) if labels else tuple(found)
    if len(labels) < 2:
        raise DatasetError(
            f"{root} must hold one folder per class (e.g. with_mask/ and without_mask/); "
            f"found {len(found)}: {', '.join(found) or 'none'}."
        )
    missing = [name for name in labels if name not in found]
    if missing:
        raise DatasetError(f"{root} has no folder for class {', '.join(missing)}.")
    return labels


def class_counts(root: str | os.PathLike) -> dict[str, int]:
    """Image files per class, by extension only: a quick check before a run is launched."""
    root = Path(root)
    counts = {
        name: sum(1 for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        for name in check_classes(root)
    }
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        raise DatasetError(f"Class {', '.join(empty)} in {root} has no image files.")
    few = [f"{name} has {n}" for name, n in counts.items() if n < MIN_IMAGES_PER_CLASS]
    if few:
        raise DatasetError(
            f"Too few images to train and test on in {root.name}: {', '.join(few)}; "
            f"each class needs at least {MIN_IMAGES_PER_CLASS}."
        )
    return counts


def scan_dataset(
    root: str | os.PathLike,
    labels: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    limit_per_class: int | None = None,
) -> DatasetScan:
    """Check every file of a folder of class folders; unreadable files are skipped and listed.

    Raises DatasetError (before any training starts) when the folder or a class is missing
    or has no usable image.
    """
    root = Path(root)
    labels = check_classes(root, labels)
    files: list[tuple[Path, int]] = []
    for index, name in enumerate(labels):
        class_files = sorted(p for p in (root / name).rglob("*") if p.is_file())
        if limit_per_class:
            class_files = class_files[:limit_per_class]
        files += [(p, index) for p in class_files]
    items: list[Item] = []
    skipped: list[tuple[str, str]] = []
    for done, (path, label) in enumerate(files, start=1):
        rel = str(path.relative_to(root))
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append((rel, f"not an image file ({path.suffix or 'no extension'})"))
        else:
            try:
                data = path.read_bytes()
                rgb = load_image(data, name=rel)
                items.append(Item(path, label, hashlib.sha1(data).hexdigest(), thumbnail(rgb)))
            except (ImageError, OSError) as exc:
                skipped.append((rel, str(exc)))
        if progress and (done % 100 == 0 or done == len(files)):
            progress(done, len(files))
    scan = DatasetScan(root, labels, items, skipped)
    empty = [name for name, n in scan.counts().items() if n == 0]
    if empty:
        raise DatasetError(f"Class {', '.join(empty)} in {root} has no readable image.")
    return scan


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """16x16 grey thumbnail in [0, 1]: the perceptual fingerprint used to find near-duplicates."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def near_duplicate_groups(thumbs: np.ndarray, threshold: float = DUPLICATE_RMS) -> np.ndarray:
    """Group ids such that images closer than `threshold` (RMS, mirror images included) share one.

    Flips, re-crops that keep the framing, rescales and re-encodes all fall within it.
    """
    n = len(thumbs)
    flat = thumbs.reshape(n, -1).astype(np.float32)
    mirrored = thumbs[:, :, ::-1].reshape(n, -1).astype(np.float32)
    dim = flat.shape[1]
    norms = (flat**2).sum(1)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    limit = threshold**2 * dim
    for start in range(0, n, 512):
        block = flat[start : start + 512]
        bn = norms[start : start + 512, None]
        for other in (flat, mirrored):
            dist = bn + norms[None, :] - 2.0 * block @ other.T
            rows, cols = np.nonzero(dist < limit)
            for r, c in zip(rows + start, cols, strict=True):
                if r != c:
                    a, b = find(int(r)), find(int(c))
                    if a != b:
                        parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(n)])


def split_dataset(
    scan: DatasetScan,
    seed: int = 0,
) -> dict[str, list[int]]:
    """Deterministic, stratified train/val/test split in which near-duplicates never straddle.

    Whole groups are dealt to splits, per class, in an order fixed by the seed and the images'
    content hashes (not file names or listing order).
    """
    groups = near_duplicate_groups(np.stack([it.thumb for it in scan.items]))
    members: dict[int, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(int(group), []).append(index)
    splits: dict[str, list[int]] = {name: [] for name in SPLITS}
    rng = np.random.default_rng(seed)
    for label in range(len(scan.labels)):
        label_groups = [
            g
            for g in members.values()
            if np.bincount([scan.items[i].label for i in g]).argmax() == label
        ]
        label_groups.sort(key=lambda g: min(scan.items[i].digest for i in g))
        order = rng.permutation(len(label_groups))
        total = sum(len(g) for g in label_groups)
        bounds = np.cumsum(SPLIT_FRACTIONS)[:-1] * total
        placed = 0
        for position in order:
            group = label_groups[position]
            name = SPLITS[int(np.searchsorted(bounds, placed, side="right"))]
            splits[name].extend(group)
            placed += len(group)
    return {name: sorted(indices) for name, indices in splits.items()}


def split_counts(scan: DatasetScan, splits: dict[str, list[int]]) -> dict[str, dict[str, int]]:
    """Images per class in each split: {split: {class: n}}."""
    return {
        name: {
            label: sum(1 for i in indices if scan.items[i].label == index)
            for index, label in enumerate(scan.labels)
        }
        for name, indices in splits.items()
    }


def check_splits(scan: DatasetScan, splits: dict[str, list[int]]) -> None:
    """DatasetError (one sentence, before any training) when a split lacks images of a class:
    MIN_SPLIT_PER_CLASS, counted after near-duplicates were kept together."""
    short = [
        f"{n} {label} in {split}"
        for split, counts in split_counts(scan, splits).items()
        for label, n in counts.items()
        if n < MIN_SPLIT_PER_CLASS[split]
    ]
    if short:
        need = ", ".join(f"{n} in {split}" for split, n in MIN_SPLIT_PER_CLASS.items())
        raise DatasetError(
            f"Too few distinct images in {scan.root.name} to train, validate and test: "
            f"{', '.join(short)} (each class needs at least {need}; add images)."
        )


def unmeasured_reason(scan: DatasetScan, splits: dict[str, list[int]]) -> str | None:
    """Why a run trained on these splits must not be served (its test split is too small to
    measure it), or None."""
    test = split_counts(scan, splits)["test"]
    short = [f"{n} {label}" for label, n in test.items() if n < MIN_MEASURED_PER_CLASS]
    if not short:
        return None
    return (
        f"Not served: its test split holds only {', '.join(short)} image(s); at least "
        f"{MIN_MEASURED_PER_CLASS} per class are needed to measure a model."
    )


@dataclass
class CropSet:
    """Face crops of a list of images, with what the detector did on each."""

    crops: np.ndarray  # (N, CROP_STORE_SIZE, CROP_STORE_SIZE, 3) uint8
    labels: np.ndarray  # (N,) int
    face_found: np.ndarray  # (N,) bool
    padded_retry: np.ndarray  # (N,) bool: found only once the image was padded


def _crop_key(digest: str, detector: FaceDetector, margin: float) -> str:
    settings = json.dumps(
        {
            "detector": repr(detector.settings),
            "margin": margin,
            "size": CROP_STORE_SIZE,
            "pad": DETECT_PAD,
            "v": 2,  # 2: crop_faces shrinks by less than 2x bilinearly
        },
        sort_keys=True,
    )
    return hashlib.sha1(f"{digest}:{settings}".encode()).hexdigest()


def face_crop(
    rgb: np.ndarray, detector: FaceDetector, margin: float = CROP_MARGIN
) -> tuple[np.ndarray, bool, bool]:
    """The crop of the image's largest face, as inference would cut it.

    Returns (crop, face_found, found_only_after_padding). When no face is found even on the
    padded image, the whole image is taken as the face (most such photos are tight crops).
    """
    faces = detector.detect(rgb)
    padded_retry = False
    if not faces:
        height, width = rgb.shape[:2]
        pad = int(round(DETECT_PAD * max(height, width)))
        framed = cv2.copyMakeBorder(
            rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128)
        )
        faces = [
            type(f)((f.box[0] - pad, f.box[1] - pad, f.box[2] - pad, f.box[3] - pad), f.score, ())
            for f in detector.detect(framed)
        ]
        padded_retry = bool(faces)
    if faces:
        face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        return crop_faces(rgb, [face.box], CROP_STORE_SIZE, margin)[0], True, padded_retry
    height, width = rgb.shape[:2]
    return crop_faces(rgb, [(0, 0, width, height)], CROP_STORE_SIZE, 0.0)[0], False, False


def extract_crops(
    items: Sequence[Item],
    detector: FaceDetector,
    margin: float = CROP_MARGIN,
    cache_dir: str | os.PathLike = CACHE_DIR,
    progress: ProgressCallback | None = None,
) -> CropSet:
    """Face crops for each item, cached on disk keyed by image content and settings."""
    cache = Path(cache_dir) / "crops"
    cache.mkdir(parents=True, exist_ok=True)
    n = len(items)
    crops = np.empty((n, CROP_STORE_SIZE, CROP_STORE_SIZE, 3), dtype=np.uint8)
    found = np.zeros(n, dtype=bool)
    padded = np.zeros(n, dtype=bool)
    for i, item in enumerate(items):
        key = _crop_key(item.digest, detector, margin)
        png, meta = cache / f"{key}.png", cache / f"{key}.json"
        cached = _read_cached_crop(png, meta)
        if cached is not None:
            crops[i], found[i], padded[i] = cached
        else:
            crop, found[i], padded[i] = face_crop(load_image(item.path), detector, margin)
            crops[i] = crop
            ok, encoded = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
            if ok:  # the image first: a crop is cached once its record (written last) exists
                write_bytes(png, encoded.tobytes())
                write_json(meta, {"face_found": bool(found[i]), "padded_retry": bool(padded[i])})
        if progress and ((i + 1) % 50 == 0 or i + 1 == n):
            progress(i + 1, n)
    return CropSet(crops, np.array([it.label for it in items], dtype=np.int32), found, padded)


def _read_cached_crop(png: Path, meta: Path) -> tuple[np.ndarray, bool, bool] | None:
    """A cached crop and its record, or None (a cache miss) when either is missing, unreadable
    or torn: the crop is then cut again and the cache entry rewritten."""
    info = read_json(meta)
    if not isinstance(info, dict) or not png.is_file():
        return None
    try:
        found, padded = bool(info["face_found"]), bool(info["padded_retry"])
    except KeyError:
        return None
    cached = cv2.imread(str(png), cv2.IMREAD_COLOR)
    if cached is None or cached.shape != (CROP_STORE_SIZE, CROP_STORE_SIZE, 3):
        return None
    return cv2.cvtColor(cached, cv2.COLOR_BGR2RGB), found, padded


def resize_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """Cached crops at the model's input size."""
    if crops.shape[1] == size:
        return crops
    interpolation = cv2.INTER_AREA if size < crops.shape[1] else cv2.INTER_LINEAR
    return np.stack([cv2.resize(c, (size, size), interpolation=interpolation) for c in crops])


def model_test_crops(card: dict, data: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """A model's test split of `data` (its card's labels and seed), its faces cut as the model
    sees them (the TRAINING detector, the card's crop margin) at its input size: (crops, labels)."""
    scan = scan_dataset(data, labels=card["labels"])
    test = split_dataset(scan, seed=card.get("seed", 0))["test"]
    crops = extract_crops([scan.items[i] for i in test], FaceDetector(TRAINING), crop_margin(card))
    return resize_crops(crops.crops, card["input_size"]), crops.labels


def describe_data(scan: DatasetScan, splits: dict[str, list[int]], crops: CropSet) -> dict:
    """data_report.json of a run: what was scanned, skipped, found by the detector and split,
    with a one-line summary."""
    no_face = [
        str(scan.items[i].path.relative_to(scan.root)) for i in np.flatnonzero(~crops.face_found)
    ]
    counts = {
        name: {label: int((crops.labels[idx] == i).sum()) for i, label in enumerate(scan.labels)}
        for name, idx in splits.items()
    }
    summary = (
        f"faces found in {int(crops.face_found.sum())} of {len(crops.labels)} images "
        f"({int(crops.padded_retry.sum())} only after padding the photo); "
        f"{len(no_face)} with no face found were used whole (they are mostly tight face crops); "
        f"split train/val/test: {', '.join(str(len(v)) for v in splits.values())}, "
        "near-duplicates kept in one split"
    )
    return {
        "summary": summary,
        "images": len(scan.items),
        "skipped": [{"file": f, "reason": r} for f, r in scan.skipped],
        "no_face_used_whole": no_face,
        "face_found": int(crops.face_found.sum()),
        "found_after_padding": int(crops.padded_retry.sum()),
        "splits": counts,
    }
