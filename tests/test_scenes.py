"""Scene evaluation on hand-made annotation sets where the answer is known, plus a smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemask.detect import WEBCAM, Face, FaceDetector
from facemask.errors import DatasetError
from facemask.evaluate import classification_metrics, mask_figures
from facemask.scenes import (
    FoundFaces,
    annotated_face_probabilities,
    average_precision,
    evaluate_detector,
    evaluate_scenes,
    load_scenes,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
MASKILC = SHARED / "datasets" / "maskilc-scenes"
LABELS = ("with_mask", "without_mask")

# Two photos. a.png: two 40 px faces and one 10 px face (below min_face 24: ignored).
# b.png: one 60 px face worn incorrectly, a class a two-label model lacks.
SCENES = [
    {
        "file": "a.png",
        "width": 200,
        "height": 100,
        "faces": [
            {"box": [10, 10, 50, 50], "label": "with_mask"},
            {"box": [100, 20, 140, 60], "label": "without_mask"},
            {"box": [170, 10, 180, 20], "label": "with_mask"},
        ],
    },
    {
        "file": "b.png",
        "width": 100,
        "height": 100,
        "faces": [{"box": [20, 20, 80, 80], "label": "mask_weared_incorrect"}],
    },
]
A_MASK, A_BARE, A_TINY = (10, 10, 50, 50), (100, 20, 140, 60), (170, 10, 180, 20)
B_WRONG = (20, 20, 80, 80)


def write_scenes(root: Path, entries: list[dict]) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    for entry in entries:
        size = (entry["width"], entry["height"])
        Image.new("RGB", size, (120, 120, 120)).save(root / "images" / entry["file"])
    (root / "annotations.json").write_text(json.dumps(entries))
    return root


@pytest.fixture()
def scenes(tmp_path: Path):
    return load_scenes(write_scenes(tmp_path / "scenes", SCENES))


class Answers:
    """Set answers per image width, standing in for a detector (an input, not the code tested)."""

    def __init__(self, by_width: dict[int, list]) -> None:
        self.by_width = by_width

    def detect(self, rgb: np.ndarray) -> list[Face]:
        return [Face(box, score) for box, score in self.by_width.get(rgb.shape[1], [])]

    def __call__(self, rgb: np.ndarray) -> list:
        return self.by_width.get(rgb.shape[1], [])


def test_load_scenes(scenes) -> None:
    assert [s.path.name for s in scenes] == ["a.png", "b.png"]
    assert scenes[0].faces[1].label == "without_mask"
    assert scenes[0].faces[1].box == (100.0, 20.0, 140.0, 60.0)
    assert scenes[1].load().shape == (100, 100, 3)


@pytest.mark.parametrize(
    "content",
    [
        None,
        "not json",
        "{}",
        "[]",
        '[{"file": "a.png"}]',
        '[{"file": "a.png", "width": 1, '
        '"height": 1, "faces": [{"box": [5, 5, 1, 1], "label": "x"}]}]',
    ],
    ids=["missing", "not-json", "not-a-list", "empty", "no-faces-key", "box-without-area"],
)
def test_load_scenes_refuses_bad_annotations(tmp_path: Path, content: str | None) -> None:
    (tmp_path / "images").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "images" / "a.png")
    if content is not None:
        (tmp_path / "annotations.json").write_text(content)
    with pytest.raises(DatasetError):
        load_scenes(tmp_path)


def test_load_scenes_refuses_missing_images(tmp_path: Path) -> None:
    write_scenes(tmp_path, SCENES)
    (tmp_path / "images" / "b.png").unlink()
    with pytest.raises(DatasetError, match="b.png"):
        load_scenes(tmp_path)


def test_detector_perfect(scenes) -> None:
    result = evaluate_detector(
        scenes, Answers({200: [(A_MASK, 0.9), (A_BARE, 0.8)], 100: [(B_WRONG, 0.7)]})
    )
    assert result["faces"] == 3 and result["faces_ignored_small"] == 1
    assert result["recall"] == 1.0 and result["precision"] == 1.0
    assert result["true_positives"] == 3 and result["false_positives"] == 0
    json.dumps(result)  # plain values: prints and serialises as is


def test_detector_missed_face_duplicate_and_background(scenes) -> None:
    shifted = (A_MASK[0] + 2, A_MASK[1] + 2, A_MASK[2] + 2, A_MASK[3] + 2)  # IoU ~0.82: duplicate
    answers = {
        200: [(A_MASK, 0.9), (shifted, 0.6), (A_TINY, 0.5), ((60, 60, 70, 70), 0.5)],
        100: [((0, 0, 30, 30), 0.8)],  # a 30 px box on nothing: a false positive
    }
    result = evaluate_detector(scenes, Answers(answers))
    assert result["true_positives"] == 1  # A_MASK only; A_BARE and B_WRONG missed
    assert result["recall"] == pytest.approx(1 / 3)
    # the duplicate and the 30 px box are false; the tiny-face hit and the 10 px box are ignored
    assert result["false_positives"] == 2 and result["detections_ignored"] == 2
    assert result["precision"] == pytest.approx(1 / 3)
    assert result["recall_by_size"] == {"24-48": 0.5, "48-96": 0.0, "96+": None}


def test_detector_iou_threshold(scenes) -> None:
    loose = (10, 10, 50, 70)  # IoU with A_MASK = 1600 / 2400 = 0.67
    answers = Answers({200: [(loose, 0.9)]})
    assert evaluate_detector(scenes, answers, iou=0.5)["true_positives"] == 1
    assert evaluate_detector(scenes, answers, iou=0.7)["true_positives"] == 0


def test_average_precision_known_values() -> None:
    assert average_precision([0.9, 0.8], [True, True], 2) == pytest.approx(1.0)
    # precision 1 up to recall 0.5, then 2/3 at recall 1
    assert average_precision([0.9, 0.8, 0.7], [True, False, True], 2) == pytest.approx(5 / 6)
    assert average_precision([0.9], [True], 2) == pytest.approx(0.5)
    assert average_precision([0.5], [False], 1) == 0.0
    assert average_precision([], [], 3) == 0.0
    # order comes from the confidences, not from the list
    assert average_precision([0.7, 0.8, 0.9], [True, False, True], 2) == pytest.approx(5 / 6)


def test_scenes_perfect(scenes) -> None:
    answers = Answers({200: [(A_MASK, "with_mask", 0.9), (A_BARE, "without_mask", 0.8)]})
    result = evaluate_scenes(scenes, answers, LABELS)
    assert result["classes"]["with_mask"]["ap"] == 1.0
    assert result["classes"]["without_mask"]["ap"] == 1.0
    assert result["mean_ap"] == 1.0
    unscored = result["classes"]["mask_worn_incorrectly"]  # the scene set's name, read as ours
    assert unscored["scored"] is False and "mask_worn_incorrectly" in unscored["reason"]
    assert unscored["faces"] == 1
    json.dumps(result)


def test_scenes_wrong_label_and_missed_face(scenes) -> None:
    answers = Answers(
        {
            # A_MASK called without_mask, more confidently than the right answer on A_BARE
            200: [(A_MASK, "without_mask", 0.95), (A_BARE, "without_mask", 0.9)],
            # a with_mask call on the incorrectly worn mask: that face is not scored at all
            100: [(B_WRONG, "with_mask", 0.99)],
        }
    )
    result = evaluate_scenes(scenes, answers, LABELS)
    assert result["classes"]["with_mask"]["ap"] == 0.0  # its one face was never found
    assert result["classes"]["with_mask"]["detections"] == 0
    assert result["classes"]["without_mask"]["ap"] == pytest.approx(0.5)
    assert result["mean_ap"] == pytest.approx(0.25)


def test_scenes_three_labels_and_objects(scenes) -> None:
    class Detection:  # what facemask.pipeline hands out: attributes, not a tuple
        def __init__(self, box, label, confidence) -> None:
            self.box, self.label, self.confidence = box, label, confidence

    labels = (*LABELS, "mask_worn_incorrectly")
    answers = Answers(
        {
            200: [Detection(A_MASK, "with_mask", 0.9)],
            100: [Detection(B_WRONG, "mask_worn_incorrectly", 0.8)],
        }
    )
    result = evaluate_scenes(scenes, answers, labels)
    classes = result["classes"]
    assert classes["mask_worn_incorrectly"]["ap"] == 1.0
    assert classes["with_mask"]["ap"] == 1.0
    assert classes["without_mask"]["ap"] == 0.0
    assert result["mean_ap"] == pytest.approx(2 / 3)


@pytest.mark.skipif(not MASKILC.is_dir(), reason="../shared/datasets/maskilc-scenes is absent")
def test_smoke_on_five_maskilc_scenes() -> None:
    scenes = load_scenes(MASKILC)[:5]
    with FaceDetector(WEBCAM) as detector:
        detection = evaluate_detector(scenes, detector)

        def detect_and_classify(rgb: np.ndarray) -> list:
            return [(f.box, "with_mask", f.score) for f in detector.detect(rgb)]

        classification = evaluate_scenes(scenes, detect_and_classify, LABELS)
    assert detection["images"] == 5 and detection["faces"] > 0
    assert 0.0 <= detection["recall"] <= 1.0
    assert detection["ms_per_image"] > 0
    assert classification["classes"]["mask_worn_incorrectly"]["scored"] is False
    assert 0.0 <= classification["classes"]["with_mask"]["ap"] <= 1.0
    json.dumps({"detection": detection, "classification": classification})


class BoxEcho:
    """Stands in for the classifier: 'probabilities' that encode each box's x1, to see which box
    (annotated or detected) each face was cropped from."""

    def __init__(self) -> None:
        self.boxes: list = []

    def __call__(self, rgb: np.ndarray, boxes) -> np.ndarray:
        self.boxes += [tuple(int(v) for v in b) for b in boxes]
        x1 = np.array([b[0] for b in boxes], dtype=np.float64)
        return np.stack([x1, -x1], axis=1)


def test_classifier_alone_crops_annotated_boxes(scenes) -> None:
    echo = BoxEcho()
    y_true, probs, left_out = annotated_face_probabilities(scenes, echo, LABELS[:2])
    assert echo.boxes == [A_MASK, A_BARE]  # the tiny face and the third class left out
    assert y_true.tolist() == [0, 1] and probs.shape == (2, 2)
    assert left_out == {"smaller than 24 px": 1, "other classes": 1}


def test_classifier_with_detector_crops_the_boxes_that_found_each_face(scenes) -> None:
    shifted_mask = (12, 11, 52, 51)  # finds A_MASK (IoU 0.9); a worse-scored duplicate of it too
    answers = Answers(
        {200: [(shifted_mask, 0.9), ((14, 10, 54, 50), 0.5), ((60, 60, 90, 90), 0.8)]}
    )
    echo = BoxEcho()
    y_true, _, left_out = annotated_face_probabilities(
        scenes, echo, LABELS[:2], detect=answers.detect
    )
    assert echo.boxes == [shifted_mask]  # A_BARE was not found: left out, and counted
    assert y_true.tolist() == [0]
    assert left_out["not found by the detector"] == 1


def test_mask_figures_count_bare_faces_called_masked() -> None:
    y_true = [0, 0, 0, 0, 1, 1, 1, 1, 1]
    p_masked = np.array([0.99, 0.97, 0.9, 0.6, 0.98, 0.95, 0.2, 0.1, 0.05])
    probs = np.stack([p_masked, 1 - p_masked], axis=1)
    labels = ["with_mask", "without_mask"]
    argmax = mask_figures(classification_metrics(y_true, probs, labels), labels)
    assert argmax == {
        "bare_called_masked": 2,
        "bare_faces": 5,
        "bare_called_masked_share": 0.4,
        "masked_recall": 1.0,
    }
    strict = mask_figures(
        classification_metrics(y_true, probs, labels, {"with_mask": 0.96}), labels
    )
    assert (strict["bare_called_masked"], strict["masked_recall"]) == (1, 0.5)
    assert mask_figures(classification_metrics([0, 1], probs[:2], ["a", "b"]), ["a", "b"]) == {}


def test_mask_figures_add_worn_wrong_recall_and_precision() -> None:
    labels = ["mask_worn_incorrectly", "with_mask", "without_mask"]
    y_true = [0, 0, 0, 1, 1, 2, 2]
    picked = [0, 0, 1, 1, 0, 2, 2]  # 2 of 3 worn wrong found; 1 masked face called worn wrong
    probs = np.eye(3)[picked] * 0.8 + 0.2 / 3
    figures = mask_figures(classification_metrics(y_true, probs, labels), labels)
    assert figures["worn_wrong_recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["worn_wrong_precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["worn_wrong_faces"] == 3
    assert (figures["bare_called_masked"], figures["masked_recall"]) == (0, 0.5)


def test_found_faces_detects_each_image_once() -> None:
    class Counting(Answers):
        calls = 0

        def detect(self, rgb: np.ndarray) -> list[Face]:
            Counting.calls += 1
            return super().detect(rgb)

    found = FoundFaces(Counting({200: [(A_MASK, 0.9)]}))
    wide, other = np.zeros((100, 200, 3), np.uint8), np.zeros((100, 100, 3), np.uint8)
    assert found(wide) == found(wide.copy()) == [Face(A_MASK, 0.9)]  # same pixels: found once
    assert found(other) == [] and Counting.calls == 2
