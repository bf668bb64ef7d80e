"""The one data flow every surface uses: detect -> crop -> classify -> (smooth) -> annotate."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from facemask import BARE, MASKED, WORN_WRONG
from facemask.classify import CROP_MARGIN, MaskClassifier, decide_indices
from facemask.detect import PHOTO, WEBCAM, DetectorSettings, Face, FaceDetector, describe
from facemask.face_models import box_iou
from facemask.gate import check_frame

DETECTOR_PRESETS: dict[str, DetectorSettings] = {"webcam": WEBCAM, "photo": PHOTO}
"""The detector settings a user picks by name (CLI --detector; facemask.detect measures them)."""
PRESET_USES = {"webcam": "live pages", "photo": "uploads"}
"""Where the app uses each preset."""


def preset_caption(name: str) -> str:
    """One sentence on a preset, built from its settings: the sidebar shows it."""
    return f"{name.capitalize()} preset ({PRESET_USES[name]}): {describe(DETECTOR_PRESETS[name])}."


LABEL_TEXT = {MASKED: "Mask", BARE: "No mask", WORN_WRONG: "Mask worn wrong"}
LABEL_COLORS_RGB = {MASKED: (40, 180, 60), BARE: (230, 40, 40), WORN_WRONG: (250, 160, 20)}
_FALLBACK_COLOR = (90, 140, 230)


@dataclass(frozen=True)
class Detection:
    """One classified face."""

    box: tuple[int, int, int, int]
    label: str
    confidence: float
    detection_score: float
    probabilities: tuple[float, ...] = ()
    track_id: int | None = None

    def as_json(self) -> dict:
        """The per-face object of the `predict --json` contract (README, docs/architecture.md)."""
        return {
            "box": [int(v) for v in self.box],
            "label": self.label,
            "confidence": round(float(self.confidence), 4),
            "detection_score": round(float(self.detection_score), 4),
        }


def square_box(box: Sequence[float], margin: float = CROP_MARGIN) -> tuple[int, int, int, int]:
    """The square, margin-padded box that `crop_faces` cuts (may extend past the image)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * (1.0 + margin)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    half = max(side, 1.0) / 2.0
    return (
        int(round(cx - half)),
        int(round(cy - half)),
        int(round(cx + half)),
        int(round(cy + half)),
    )


def crop_interpolation(side: int, size: int) -> int:
    """How a square patch of `side` px becomes `size` px: OpenCV's area average when it shrinks
    by 2x or more (fine detail would alias), else bilinear, which reads at most two source
    pixels per output pixel at these scales and is several times faster than INTER_AREA; on the
    scene faces the labels are the same either way."""
    return cv2.INTER_AREA if side >= 2 * size else cv2.INTER_LINEAR


def crop_faces(
    frame: np.ndarray,
    boxes: Sequence[Sequence[float]],
    size: int,
    margin: float = CROP_MARGIN,
) -> np.ndarray:
    """Cut a square crop around each box and resize it: (N, size, size, 3) uint8.

    Parts of the square outside the frame are filled by replicating the border, so a face at
    the edge of a webcam frame and a tight face-crop photo look alike to the classifier.
    """
    out = np.empty((len(boxes), size, size, 3), dtype=np.uint8)
    height, width = frame.shape[:2]
    for i, box in enumerate(boxes):
        x1, y1, x2, y2 = square_box(box, margin)
        cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        if cx2 <= cx1 or cy2 <= cy1:
            out[i] = 0
            continue
        patch = frame[cy1:cy2, cx1:cx2]
        pad = (cy1 - y1, y2 - cy2, cx1 - x1, x2 - cx2)
        if any(pad):
            patch = cv2.copyMakeBorder(patch, *pad, borderType=cv2.BORDER_REPLICATE)
        out[i] = cv2.resize(patch, (size, size), interpolation=crop_interpolation(len(patch), size))
    return out


@dataclass
class _Track:
    track_id: int
    box: tuple[int, int, int, int]
    probabilities: np.ndarray
    label_index: int
    missed: int = 0


@dataclass
class FaceTracker:
    """Per-session smoothing so labels do not flicker between frames.

    Faces are matched to the previous frame's tracks by box overlap; each track keeps an
    exponential moving average of the class probabilities, and its label changes only when the
    decision rule (the card's thresholds, else the argmax) still picks another class with the
    current one's probability raised by `hysteresis` (the original project's idea). One tracker
    per live session: it is not shared between threads.
    """

    alpha: float = 0.4
    hysteresis: float = 0.15
    min_iou: float = 0.3
    max_missed: int = 5
    _tracks: list[_Track] = field(default_factory=list)
    _next_id: int = 1

    def update(
        self,
        detections: list[Detection],
        labels: Sequence[str],
        thresholds: Mapping[str, float] | None = None,
    ) -> list[Detection]:
        """Smooth this frame's detections against the tracks; return them with track ids."""
        unmatched = list(range(len(self._tracks)))
        smoothed: list[Detection] = []
        ordered = sorted(detections, key=lambda d: -d.detection_score)
        overlaps = box_iou([d.box for d in ordered], [t.box for t in self._tracks])
        for i, det in enumerate(ordered):
            probs = np.asarray(det.probabilities, dtype=np.float32)
            best, best_iou = None, self.min_iou
            for j in unmatched:  # a track matched earlier in this frame is out of the running
                overlap = overlaps[i, j]
                if overlap >= best_iou:
                    best, best_iou = j, overlap
            if best is None:
                first = int(decide_indices(probs[None], labels, thresholds)[0])
                track = _Track(self._next_id, det.box, probs, first)
                self._next_id += 1
                self._tracks.append(track)
            else:
                unmatched.remove(best)
                track = self._tracks[best]
                track.box, track.missed = det.box, 0
                track.probabilities = self.alpha * probs + (1 - self.alpha) * track.probabilities
                held = track.probabilities.copy()
                held[track.label_index] += self.hysteresis
                track.label_index = int(decide_indices(held[None], labels, thresholds)[0])
            smoothed.append(
                Detection(
                    box=det.box,
                    label=labels[track.label_index],
                    confidence=float(track.probabilities[track.label_index]),
                    detection_score=det.detection_score,
                    probabilities=tuple(float(p) for p in track.probabilities),
                    track_id=track.track_id,
                )
            )
        seen = {d.track_id for d in smoothed}
        for track in self._tracks:
            if track.track_id not in seen:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        return smoothed


class TrackVotes:
    """Each tracked person's labels over their frames, and one voted label per person (the label
    most of their frames had; a tie goes to the label seen first): how a video or an archive
    counts people rather than face detections."""

    def __init__(self) -> None:
        self.votes: dict[int, Counter[str]] = {}

    def add(self, detections: Sequence[Detection]) -> None:
        """Count one frame's tracked detections."""
        for det in detections:
            if det.track_id is not None:
                self.votes.setdefault(det.track_id, Counter())[det.label] += 1

    def people(self) -> Counter[str]:
        """People per voted label."""
        return Counter(votes.most_common(1)[0][0] for votes in self.votes.values())


class Pipeline:
    """Detector + classifier, shared across threads and sessions (each part has its own lock)."""

    def __init__(
        self,
        detector: FaceDetector,
        classifier: MaskClassifier,
        *,
        margin: float | None = None,
    ) -> None:
        self.detector = detector
        self.classifier = classifier
        # the context the classifier was trained with (its card's crop_margin), unless overridden
        self.margin = classifier.crop_margin if margin is None else margin
        self._lock = threading.Lock()

    @property
    def labels(self) -> tuple[str, ...]:
        return self.classifier.labels

    def classify_faces(self, frame: np.ndarray, faces: Sequence[Face]) -> list[Detection]:
        """Crop and classify faces already found in `frame`."""
        if not faces:
            return []
        probabilities = self.classify_boxes(frame, [f.box for f in faces])
        classifier = self.classifier
        indices = decide_indices(probabilities, classifier.labels, classifier.thresholds)
        return [
            _detection(face.box, probs, face.score, classifier, int(index))
            for face, probs, index in zip(faces, probabilities, indices, strict=True)
        ]

    def classify_boxes(self, frame: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        """Class probabilities (N, labels) for face boxes in `frame`, cropped as at run time."""
        crops = crop_faces(frame, boxes, self.classifier.input_size, self.margin)
        return self.classifier.predict(crops)

    def process(self, frame: np.ndarray, tracker: FaceTracker | None = None) -> list[Detection]:
        """Find every face in an RGB uint8 frame and say mask / no mask on each."""
        check_frame(frame)  # the gate: dtype, shape and sides before any native library
        detections = self.classify_faces(frame, self.detector.detect(frame))
        if tracker is not None:
            detections = tracker.update(detections, self.labels, self.classifier.thresholds)
        return detections

    def classify_whole(self, image: np.ndarray) -> Detection:
        """Classify an image that is already a face crop (no detector)."""
        height, width = image.shape[:2]
        box = (0, 0, width, height)
        crop = crop_faces(image, [box], self.classifier.input_size, margin=0.0)
        probs = self.classifier.predict(crop)[0]
        return _detection(box, probs, 1.0, self.classifier, self.classifier.decide(probs)[0])


def _detection(
    box: Sequence[int],
    probs: np.ndarray,
    score: float,
    classifier: MaskClassifier,
    index: int,
) -> Detection:
    """A Detection with label `index`, the one the card's decision rule gave `probs`."""
    return Detection(
        box=tuple(int(v) for v in box),
        label=classifier.labels[index],
        confidence=float(probs[index]),
        detection_score=float(score),
        probabilities=tuple(float(p) for p in probs),
    )


def label_color(label: str) -> tuple[int, int, int]:
    """RGB colour for a label: green mask, red no mask, orange worn incorrectly."""
    return LABEL_COLORS_RGB.get(label, _FALLBACK_COLOR)


def annotate(
    frame: np.ndarray,
    detections: Sequence[Detection],
    overlay: Sequence[str] = (),
    legend: Sequence[str] = (),
) -> np.ndarray:
    """Draw a box and 'label NN%' on every face, plus overlay lines (FPS, latency) top-left and
    a legend (a colour swatch and name per label in `legend`) bottom-left.

    Returns a new RGB frame; the input is not modified.
    """
    out = frame.copy()
    height, width = out.shape[:2]
    scale = max(0.45, min(1.2, width / 900))
    thickness = max(1, int(round(scale * 2)))
    for det in detections:
        color = label_color(det.label)
        x1, y1, x2, y2 = det.box
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        text = f"{LABEL_TEXT.get(det.label, det.label)} {det.confidence:.0%}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        ty = y1 - th - base - 4 if y1 - th - base - 4 >= 0 else min(y2 + 2, height - th - base - 4)
        cv2.rectangle(out, (x1, ty), (x1 + tw + 6, ty + th + base + 4), color, -1)
        cv2.putText(
            out,
            text,
            (x1 + 3, ty + th + 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            thickness,
            cv2.LINE_AA,
        )
    y = 8
    for line in overlay:
        (tw, th), base = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        cv2.rectangle(out, (6, y), (14 + tw, y + th + base + 6), (0, 0, 0), -1)
        cv2.putText(
            out,
            line,
            (10, y + th + 3),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            thickness,
            cv2.LINE_AA,
        )
        y += th + base + 10
    if legend:
        _draw_legend(out, legend, scale * 0.8, max(1, thickness - 1))
    return out


def _draw_legend(out: np.ndarray, labels: Sequence[str], scale: float, thickness: int) -> None:
    """One row of swatches along the bottom-left corner, on a dark band so it reads anywhere."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    texts = [LABEL_TEXT.get(label, label) for label in labels]
    sizes = [cv2.getTextSize(t, font, scale, thickness) for t in texts]
    th = max(h for (_, h), _ in sizes)
    base = max(b for _, b in sizes)
    swatch, gap, height = th + base, max(4, th // 2), out.shape[0]
    width = sum(swatch + 4 + w + 2 * gap for (w, _), _ in sizes) + gap
    top = height - swatch - 2 * gap
    cv2.rectangle(out, (0, top), (min(width, out.shape[1] - 1), height - 1), (0, 0, 0), -1)
    x = gap
    for label, text, ((w, _), _) in zip(labels, texts, sizes, strict=True):
        cv2.rectangle(out, (x, top + gap), (x + swatch, top + gap + swatch), label_color(label), -1)
        cv2.putText(
            out, text, (x + swatch + 4, top + gap + th), font, scale, (255, 255, 255), thickness,
            cv2.LINE_AA,
        )  # fmt: skip
        x += swatch + 4 + w + 2 * gap


class FrameTimer:
    """Rolling FPS and per-frame latency for the live overlay."""

    def __init__(self, window: int = 30) -> None:
        self._stamps: list[float] = []
        self._latencies: list[float] = []
        self._window = window

    def tick(self, latency_ms: float) -> tuple[float, float]:
        """Record one processed frame; return (fps, median latency ms) over the window."""
        self._stamps = (self._stamps + [time.perf_counter()])[-self._window :]
        self._latencies = (self._latencies + [latency_ms])[-self._window :]
        span = self._stamps[-1] - self._stamps[0]
        fps = (len(self._stamps) - 1) / span if span > 0 else 0.0
        return fps, float(np.median(self._latencies))
