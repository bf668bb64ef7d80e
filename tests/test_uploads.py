"""The Upload page's logic without Streamlit: a batch of uploads gives per-file results or one
sentence each, and the downloads (JSON Lines, zip of annotated PNGs) hold what the page shows."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemask.classify import MaskClassifier
from facemask.detect import PHOTO, FaceDetector
from facemask.images import encode_image
from facemask.pipeline import Pipeline
from facemask.uploads import (
    PREVIEW_SIDE,
    admitted,
    analyse_image,
    annotated_png,
    annotated_zip,
    results_jsonl,
    whole_image_sentence,
)


@pytest.fixture(scope="module")
def pipeline(shipped_model_dir: Path) -> Pipeline:
    return Pipeline(FaceDetector(PHOTO), MaskClassifier(shipped_model_dir))


def test_a_batch_gives_a_result_or_one_sentence_per_file(pipeline, face_images) -> None:
    photo = next(p for p in face_images if p.name == "astronaut.jpg").read_bytes()
    uploads = [("a.jpg", photo), ("notes.jpg", b"hello"), ("a.jpg", photo)]
    outcomes = [analyse_image(data, name, pipeline) for name, data in uploads]

    good, bad, again = outcomes
    assert bad.error is not None and bad.result is None
    assert str(bad.error) == "notes.jpg is not a readable image (JPEG, PNG, WebP, GIF or BMP)."
    assert good.error is None and good.result["file"] == "a.jpg"
    assert len(good.result["faces"]) == len(good.rows) == 1
    assert good.rows[0]["label"] in ("Mask", "No mask")
    assert Image.open(io.BytesIO(good.preview)).size == (512, 512)  # below PREVIEW_SIDE
    png = annotated_png(photo, good)
    assert Image.open(io.BytesIO(png)).size == (512, 512) and png.startswith(b"\x89PNG")

    lines = [json.loads(line) for line in results_jsonl([good.result, again.result]).splitlines()]
    assert lines == [good.result, again.result]
    pairs = [(data, outcome) for (_, data), outcome in zip(uploads, outcomes, strict=True)]
    with zipfile.ZipFile(io.BytesIO(annotated_zip(pairs))) as archive:
        assert archive.namelist() == ["a_annotated.png", "a_annotated-2.png"]
        assert archive.read("a_annotated.png") == png


def test_no_face_can_be_classified_as_a_whole(pipeline, monkeypatch) -> None:
    texture = np.random.default_rng(0).integers(90, 160, size=(120, 160, 3), dtype=np.uint8)
    plain = analyse_image(encode_image(texture), "wall.png", pipeline)
    assert plain.result["faces"] == [] and plain.rows == []
    calls = []
    real = pipeline.classify_whole
    monkeypatch.setattr(pipeline, "classify_whole", lambda rgb: calls.append(1) or real(rgb))
    whole = analyse_image(encode_image(texture), "wall.png", pipeline, whole_image=True)
    assert len(calls) == 1  # classified once: the result and the drawing share it
    assert whole.result["image_label"] in pipeline.labels
    assert whole_image_sentence(whole.result).startswith("Whole image: **")
    assert whole.preview != plain.preview  # the whole image is boxed and labelled
    assert annotated_png(encode_image(texture), whole) != annotated_png(
        encode_image(texture), plain
    )


def test_a_session_gets_a_limited_number_of_photos_and_bytes() -> None:
    assert admitted([10, 10, 10], max_files=5, max_bytes=100) == (3, None)
    count, note = admitted([10] * 8, max_files=5, max_bytes=100)
    assert count == 5 and note.startswith("Only the first 5 of 8 photos were analysed")
    count, note = admitted([60, 30, 20, 5], max_files=5, max_bytes=100)
    assert count == 2 and "5 photos or 0 MB" in note  # bytes run out first, order is kept


def test_a_big_photo_keeps_only_a_small_preview(pipeline, face_images) -> None:
    photo = Image.open(next(p for p in face_images if p.name == "astronaut.jpg"))
    big = encode_image(np.asarray(photo.resize((4000, 4000))), "JPEG")
    outcome = analyse_image(big, "big.jpg", pipeline)
    preview = Image.open(io.BytesIO(outcome.preview))
    assert preview.size == (PREVIEW_SIDE, PREVIEW_SIDE) and preview.format == "JPEG"
    assert len(outcome.preview) < 1_000_000  # kept per photo, instead of a 4000 px PNG
    assert Image.open(io.BytesIO(annotated_png(big, outcome))).size == (4000, 4000)
