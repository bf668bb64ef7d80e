"""The Upload page through the real app (app.py navigation and sidebar), driven by AppTest."""

from __future__ import annotations

import io
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from facemask.images import encode_image, load_image
from facemask.pipeline import preset_caption

APP = Path(__file__).resolve().parent.parent / "app.py"
PAGE = "app_pages/upload.py"
TIMEOUT = 120


@pytest.fixture
def app(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> AppTest:
    """The upload page serving the tiny real model (a finished run) and nothing else."""
    monkeypatch.setenv("FACEMASK_RUNS_DIR", str(tiny_model_dir.parent))
    monkeypatch.setenv("FACEMASK_MODELS_DIR", str(tmp_path / "no-shipped-models"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def face_photo(face_images: list[Path], name: str) -> bytes:
    return next(p for p in face_images if p.name == name).read_bytes()


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_photos_give_annotated_faces_and_downloads(app: AppTest, face_images) -> None:
    assert app.sidebar.selectbox(key="sidebar_model").value == "tiny"
    assert preset_caption("photo") in [c.value for c in app.sidebar.caption]
    uploader = app.file_uploader(key="upload_images")
    uploader.upload("astronaut.jpg", face_photo(face_images, "astronaut.jpg"), "image/jpeg")
    uploader.upload(
        "without_mask_00597.jpg", face_photo(face_images, "without_mask_00597.jpg"), "image/jpeg"
    )
    app.run()
    no_exception(app)

    assert not app.error
    assert [s.value for s in app.subheader] == ["astronaut.jpg", "without_mask_00597.jpg"]
    assert len(app.dataframe) == 2
    labels = {"Mask", "No mask"}
    for table in app.dataframe:
        rows = table.value.to_dict("records")
        assert len(rows) == 1
        x1, y1, x2, y2 = map(int, rows[0]["box"].split(", "))
        assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 512
        assert rows[0]["label"] in labels
        assert 0.5 <= rows[0]["confidence"] <= 1.0
        assert 0.5 <= rows[0]["detection score"] <= 1.0
    assert len(app.get("image")) == 2
    downloads = [b.label for b in app.get("download_button")]
    assert downloads.count("Annotated image (PNG)") == 2
    assert "Results (CSV)" in downloads and "Results (JSON Lines)" in downloads
    assert any("2 face(s) in 2 image(s)" in m.value for m in app.main.get("markdown"))


def test_bad_files_get_one_sentence_each(app: AppTest, face_images, tmp_path: Path) -> None:
    real = face_photo(face_images, "without_mask_00599.jpg")
    huge = io.BytesIO()
    Image.new("L", (8000, 6000)).save(huge, format="PNG")  # 48 megapixels, a few KB
    uploader = app.file_uploader(key="upload_images")
    uploader.upload("notes.jpg", b"this is not an image", "image/jpeg")
    uploader.upload("cut.jpg", real[: len(real) // 2], "image/jpeg")
    uploader.upload("bomb.png", huge.getvalue(), "image/png")
    uploader.upload("without_mask_00599.jpg", real, "image/jpeg")
    app.run()
    no_exception(app)

    errors = app.error.values
    assert len(errors) == 3
    assert errors[0].startswith("notes.jpg is not a readable image")
    assert errors[1].startswith("cut.jpg ")
    assert errors[2].startswith("bomb.png is 8000x6000 pixels")
    assert all("Traceback" not in e and "\n" not in e for e in errors)
    assert len(app.dataframe) == 1  # the good photo is still processed
    assert [b.label for b in app.get("download_button")].count("Annotated image (PNG)") == 1


def test_no_face_offers_whole_image_classification(app: AppTest, face_images) -> None:
    texture = np.random.default_rng(0).integers(90, 160, size=(120, 160, 3), dtype=np.uint8)
    app.file_uploader(key="upload_images").upload("wall.png", encode_image(texture), "image/png")
    app.run()
    no_exception(app)
    assert "No face was found" in app.info.values[0]
    assert not app.dataframe and not app.success
    toggle = app.toggle[0]
    assert toggle.label == "Classify the whole image as one face" and toggle.value is False

    toggle.set_value(True).run()
    no_exception(app)
    assert len(app.success) == 1
    text = app.success.values[0]
    assert text.startswith("Whole image: **Mask**") or text.startswith("Whole image: **No mask**")


def astronaut_clip(face_images, path: Path, frames: int, rate: int, drift: int = 0) -> bytes:
    """An H.264 clip of the astronaut photo at 256 x 256, moving `drift` px sideways a frame."""
    face = load_image(next(p for p in face_images if p.name == "astronaut.jpg"))[::2, ::2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
        for i in range(frames):
            frame = np.ascontiguousarray(np.roll(face, drift * i, axis=1))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path.read_bytes()


def test_video_is_annotated_with_progress(app: AppTest, face_images, tmp_path: Path) -> None:
    clip = astronaut_clip(face_images, tmp_path / "clip.mp4", frames=6, rate=8)
    app.file_uploader(key="upload_video").upload("clip.mp4", clip, "video/mp4")
    app.run()
    no_exception(app)
    assert not app.get("video")
    app.button(key="annotate_video").click().run()
    no_exception(app)
    wait_for_video_job(app)

    assert not app.error
    assert app.success.values[-1].startswith("6 frames (0.8 s at 8 fps), 256 x 256 px; faces: 1 ")
    assert len(app.get("video")) == 1
    assert "Annotated video (MP4)" in [b.label for b in app.get("download_button")]

    app.file_uploader(key="upload_video").set_value(("broken.mp4", b"\x00" * 4096, "video/mp4"))
    app.run()
    app.button(key="annotate_video").click().run()
    wait_for_video_job(app)
    no_exception(app)
    assert app.error.values == [
        "broken.mp4 is not a readable video (MP4, MOV, AVI or WebM): "
        "its first bytes are those of none of them."
    ]
    assert not app.get("video")


def test_a_running_video_can_be_cancelled(app: AppTest, face_images, tmp_path: Path) -> None:
    # 60 s of a drifting face: far longer than the test takes to press Cancel
    clip = astronaut_clip(face_images, tmp_path / "long.mp4", frames=1500, rate=25, drift=1)
    app.file_uploader(key="upload_video").upload("long.mp4", clip, "video/mp4")
    app.run()
    app.button(key="annotate_video").click().run()
    no_exception(app)
    assert len(app.get("progress")) == 1
    app.button(key="cancel_video").click().run()
    no_exception(app)
    assert app.info.values[-1] == "Cancelled; nothing was saved."
    assert not app.get("progress") and not app.get("video") and not app.error
    assert app.button(key="annotate_video").label == "Annotate the video"  # ready to start again


def wait_for_video_job(app: AppTest, seconds: float = 120) -> None:
    """Rerun the page (as its timer does in a browser) until the background job has ended."""
    deadline = time.monotonic() + seconds
    while app.get("progress"):
        assert time.monotonic() < deadline, "the video job did not end"
        time.sleep(0.3)
        app.run()


def test_without_any_model_the_app_says_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FACEMASK_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FACEMASK_MODELS_DIR", str(tmp_path / "models"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page(PAGE).run()
    no_exception(at)
    assert at.sidebar.error.values == ["No model is available yet."]
    assert "train one on the **Training** page" in at.sidebar.markdown.values[0]
    assert at.info.values[0].startswith("No model is available yet")
    assert not at.file_uploader


def test_a_widget_copy_of_an_upload_shares_its_bytes() -> None:
    """Streamlit returns every widget value deep-copied on every run; with the app's
    workaround an upload's copy shares the uploader's bytes instead of holding them twice
    (twenty 17 MB photos: 340 MB a session), and a write to either side stays its own."""
    import copy

    from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec

    import ui

    class Urls:
        upload_url = delete_url = ""

    data = bytes(range(256)) * 4096
    upload = UploadedFile(UploadedFileRec("id", "a.jpg", "image/jpeg", data), Urls())
    upload.read(7)
    ui.share_uploads_on_copy()
    shared = copy.deepcopy(upload)
    assert shared.getvalue() is data and shared == upload
    assert (shared.tell(), shared.name, shared.size) == (7, "a.jpg", len(data))
    shared.write(b"!!")
    assert upload.getvalue() is data and shared.getvalue()[7:9] == b"!!"
    assert ui.share_uploads_on_copy()  # idempotent
