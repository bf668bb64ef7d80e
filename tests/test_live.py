"""The live frame callback as a plain function, on real av.VideoFrames of real face photos.

Also the WebRTC settings: ICE servers from the environment, the loopback-only test mode and the
streamlit-webrtc stale-state fix.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facemask import WORN_WRONG, charts, live, webrtc
from facemask import worn_masks as wm
from facemask.classify import MaskClassifier
from facemask.detect import PHOTO, WEBCAM, FaceDetector
from facemask.errors import FacemaskError, ModelError
from facemask.images import load_image
from facemask.pipeline import LABEL_COLORS_RGB, Pipeline, preset_caption

WIDTH, HEIGHT = 640, 480
REPO = Path(__file__).resolve().parents[1]
THREE_CLASS_MODEL = REPO / "models" / "mobilenetv2-3class"
BARE_PHOTO = REPO / "tests" / "data" / "faces" / "without_mask_00599.jpg"


def webcam_frame(photo: np.ndarray, background: int = 100) -> np.ndarray:
    """A 640x480 RGB frame with the photo scaled into its middle, like a face near a webcam."""
    frame = np.full((HEIGHT, WIDTH, 3), background, dtype=np.uint8)
    scale = min(0.85 * HEIGHT / photo.shape[0], 0.85 * WIDTH / photo.shape[1])
    size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
    face = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    y, x = (HEIGHT - face.shape[0]) // 2, (WIDTH - face.shape[1]) // 2
    frame[y : y + face.shape[0], x : x + face.shape[1]] = face
    return frame


def worn_wrong_photo(detector: FaceDetector) -> np.ndarray:
    """A real bare face from tests/data/faces with a surgical mask drawn under its nose
    (facemask.worn_masks, as the 3-class model's made faces are)."""
    bare = load_image(BARE_PHOTO)
    points = wm.face_points(bare, detector, wm.fm.FaceMesh())
    return wm.draw_mask(bare, points, "under_nose", np.random.default_rng(0), "surgical").image


def video_frame(rgb: np.ndarray, pts: int = 0) -> av.VideoFrame:
    """An av.VideoFrame in yuv420p, the format a decoded WebRTC video track delivers."""
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    frame.pts = pts
    return frame


@pytest.fixture(scope="module")
def detector():
    with FaceDetector(WEBCAM) as face_detector:
        yield face_detector


@pytest.fixture(scope="module")
def pipeline(detector, tiny_model_dir) -> Pipeline:
    return Pipeline(detector, MaskClassifier(tiny_model_dir))


@pytest.fixture(scope="module")
def face_frame(detector, face_images) -> np.ndarray:
    """The test photo whose one face the webcam detector is surest of, as a webcam frame."""
    best, best_score = None, 0.0
    for path in face_images:
        frame = webcam_frame(load_image(path))
        faces = detector.detect(frame)
        if len(faces) == 1 and faces[0].score > best_score:
            best, best_score = frame, faces[0].score
    if best is None:
        pytest.fail("the webcam detector found no single face in any of tests/data/faces")
    return best


@pytest.fixture(scope="module")
def tint_model_dir(tmp_path_factory) -> Path:
    """A real Keras model dir whose 'with_mask' probability follows the crop's red-green tint.

    p(with_mask) = sigmoid(2 * 0.0155 * mean(R - G)): a gray face tinted +-10 (R - G = +-20)
    scores 0.65 / 0.35, so frame-by-frame labels flip when the tint alternates.
    """
    import keras

    size = 32
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    a = 0.0155
    kernel = np.array([[a, -a], [-a, a], [0.0, 0.0]], dtype=np.float32)
    model.layers[-1].set_weights([kernel, np.zeros(2, dtype=np.float32)])
    folder = tmp_path_factory.mktemp("tint") / "tint"
    folder.mkdir()
    model.save(folder / "model.keras")
    card = {"name": "tint", "labels": ["with_mask", "without_mask"], "input_size": size}
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def tinted(frame: np.ndarray, shift: int) -> np.ndarray:
    """The frame in gray, with red raised and green lowered by `shift` (negative: the reverse)."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.int16)
    gray = np.clip(gray, 20, 235)  # room for the tint: R - G stays exactly 2 * shift
    out = np.stack([gray + shift, gray - shift, gray], axis=-1)
    return out.astype(np.uint8)


class GatedPipeline(Pipeline):
    """A real pipeline whose process() waits for a gate: a frame held 'in flight' on demand."""

    def __init__(self, base: Pipeline) -> None:
        super().__init__(base.detector, base.classifier)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def process(self, frame, tracker=None):
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        return super().process(frame, tracker)


class BrokenModelPipeline(Pipeline):
    """A real pipeline whose model folder vanished after loading: process() raises ModelError."""

    def __init__(self, base: Pipeline) -> None:
        super().__init__(base.detector, base.classifier)
        self.fail = False

    def process(self, frame, tracker=None):
        if self.fail:
            raise ModelError("models/tiny is missing: the model was deleted.")
        return super().process(frame, tracker)


# -- the frame callback ------------------------------------------------------------------------
def test_frame_with_a_face_comes_back_annotated_and_counted(pipeline, face_frame):
    processor = live.LiveProcessor(pipeline)
    original = video_frame(face_frame).to_ndarray(format="rgb24")  # what the callback sees
    face = pipeline.process(original)[0]
    before = time.time()

    out = processor.process(video_frame(face_frame))

    assert (out.width, out.height) == (WIDTH, HEIGHT)
    result = out.to_ndarray(format="rgb24")
    diff = np.abs(result.astype(int) - original.astype(int)).sum(axis=2)
    x1, y1, x2, y2 = face.box
    top_edge = diff[max(y1 - 2, 0) : y1 + 3, x1:x2].max(axis=0)
    left_edge = diff[y1:y2, max(x1 - 2, 0) : x1 + 3].max(axis=1)
    assert top_edge.mean() > 30, "no box drawn along the face's top edge"
    assert left_edge.mean() > 30, "no box drawn along the face's left edge"
    assert diff[HEIGHT - 40 :, WIDTH - 40 :].mean() < 3, "pixels away from the face changed"
    assert diff[10:40, 10:60].mean() > 30, "no FPS / latency overlay in the top-left corner"

    [record] = processor.history()
    assert record.faces == 1
    assert record.count(face.label) == 1
    assert [label for label, _ in record.counts] == list(pipeline.labels)
    assert before <= record.time <= time.time()
    assert record.latency_ms > 0
    stats = processor.stats()
    assert (stats.processed, stats.skipped, stats.failed) == (1, 0, 0)


def test_frame_without_a_face_records_zero_and_keeps_the_picture(pipeline):
    processor = live.LiveProcessor(pipeline)
    rng = np.random.default_rng(0)
    empty = cv2.GaussianBlur(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8), (0, 0), 8)

    out = processor.process(video_frame(empty)).to_ndarray(format="rgb24")

    original = video_frame(empty).to_ndarray(format="rgb24")
    diff = np.abs(out.astype(int) - original.astype(int)).sum(axis=2)
    assert diff[100 : HEIGHT - 40, :].max() == 0 and diff[HEIGHT - 40 :, WIDTH // 2 :].max() == 0, (
        "a frame without faces must only gain the overlay and the legend"
    )
    assert (out[HEIGHT - 2, :40] == 0).all(), "no legend band in the bottom-left corner"
    assert processor.history()[-1].faces == 0


def test_a_three_class_model_draws_amber_boxes_and_its_three_labels_legend(detector):
    """The shipped 3-class model on the server-side page: a mask under the nose gets an amber
    box, and every frame carries the legend of the model's labels (amber = worn wrong)."""
    if not (THREE_CLASS_MODEL / "card.json").is_file():
        pytest.skip("models/mobilenetv2-3class is not in this checkout")
    pipeline = Pipeline(detector, MaskClassifier(THREE_CLASS_MODEL))
    processor = live.LiveProcessor(pipeline)

    out = processor.process(video_frame(webcam_frame(worn_wrong_photo(detector))))

    result = out.to_ndarray(format="rgb24")
    [record] = processor.history()
    assert record.faces == 1 and record.count(WORN_WRONG) == 1, record.counts
    amber = LABEL_COLORS_RGB[WORN_WRONG]
    rows, columns = np.nonzero(np.all(result[: HEIGHT - 60] == amber, axis=2))
    assert columns.size > 200 and np.ptp(columns) > 60 and np.ptp(rows) > 60  # a box, in amber
    band = result[HEIGHT - 40 :, : WIDTH // 2]
    for label in pipeline.labels:  # a swatch per label, the three of them
        assert np.all(band == LABEL_COLORS_RGB[label], axis=2).sum() >= 100, label


def test_labels_do_not_flicker_when_the_classifier_does(detector, tint_model_dir, face_frame):
    pipeline = Pipeline(detector, MaskClassifier(tint_model_dir, runtime="keras"))
    frames = [tinted(face_frame, 10 if i % 2 == 0 else -10) for i in range(10)]
    raw = [[d.label for d in pipeline.process(f)] for f in frames]
    assert all(len(labels) == 1 for labels in raw), f"the face was not found in every frame: {raw}"
    assert [labels[0] for labels in raw] == ["with_mask", "without_mask"] * 5, "no raw flicker"

    processor = live.LiveProcessor(pipeline)
    for i, frame in enumerate(frames):
        processor.process(video_frame(frame, pts=i))

    shown = [(r.count("with_mask"), r.count("without_mask")) for r in processor.history()]
    assert shown == [(1, 0)] * 10


def test_a_frame_arriving_while_one_is_in_flight_gets_the_last_picture(pipeline, face_frame):
    gated = GatedPipeline(pipeline)
    processor = live.LiveProcessor(gated)
    first = processor.process(video_frame(face_frame)).to_ndarray(format="rgb24")

    gated.gate.clear()
    gated.entered.clear()
    results = {}
    worker = threading.Thread(
        target=lambda: results.setdefault("slow", processor.process(video_frame(face_frame)))
    )
    worker.start()
    try:
        assert gated.entered.wait(30)
        started = time.perf_counter()
        stale = processor.process(video_frame(np.zeros((HEIGHT, WIDTH, 3), np.uint8)))
        waited = time.perf_counter() - started
    finally:
        gated.gate.set()
        worker.join(30)

    assert waited < 0.5, f"the second frame waited {waited:.2f} s for the first"
    assert np.array_equal(stale.to_ndarray(format="rgb24"), first), "not the last picture"
    assert (stale.width, stale.height) == (WIDTH, HEIGHT)
    assert results["slow"].width == WIDTH
    stats = processor.stats()
    assert (stats.processed, stats.skipped) == (2, 1)
    assert len(processor.history()) == 2, "the skipped frame must not be recorded"


def test_a_busy_frame_of_another_size_passes_through(pipeline, face_frame):
    gated = GatedPipeline(pipeline)
    processor = live.LiveProcessor(gated)
    processor.process(video_frame(face_frame))
    gated.gate.clear()
    gated.entered.clear()
    worker = threading.Thread(target=processor.process, args=(video_frame(face_frame),))
    worker.start()
    try:
        assert gated.entered.wait(30)
        small = video_frame(np.full((360, 480, 3), 50, np.uint8))
        started = time.perf_counter()
        assert processor.process(small) is small
        assert time.perf_counter() - started < 0.5
        assert processor.stats().skipped == 1
    finally:
        gated.gate.set()
        worker.join(30)


def test_streamlit_webrtc_hands_over_only_the_newest_queued_frame(pipeline, face_frame):
    """The library's policy this module relies on (async_processing=True, frame callback)."""
    from streamlit_webrtc.models import CallbackAttachableProcessor

    processor = live.LiveProcessor(pipeline)
    wrapper = CallbackAttachableProcessor(processor.process, None, None)
    blank = np.full((HEIGHT, WIDTH, 3), 100, np.uint8)
    queued = [video_frame(blank, 0), video_frame(blank, 1), video_frame(face_frame, 2)]

    out = asyncio.run(wrapper.recv_queued(queued))

    assert len(out) == 1
    assert processor.stats().processed == 1
    assert processor.history()[-1].faces == 1, "the newest frame (with the face) was not the one"


def test_a_failing_model_shows_the_frame_and_one_sentence(pipeline, face_frame):
    broken = BrokenModelPipeline(pipeline)
    processor = live.LiveProcessor(broken)
    broken.fail = True
    frame = video_frame(face_frame)

    assert processor.process(frame) is frame
    stats = processor.stats()
    assert (stats.processed, stats.failed) == (0, 1)
    assert stats.last_error == "models/tiny is missing: the model was deleted."

    broken.fail = False
    processor.process(video_frame(face_frame))
    assert processor.stats().last_error is None


def test_switching_model_keeps_history_and_resets_tracking(pipeline, detector, face_frame):
    processor = live.LiveProcessor(pipeline)
    processor.process(video_frame(face_frame))
    other = Pipeline(detector, pipeline.classifier)
    processor.set_pipeline(other)
    processor.process(video_frame(face_frame))
    assert processor.pipeline is other
    assert len(processor.history()) == 2


def test_history_is_bounded_and_filterable(pipeline):
    processor = live.LiveProcessor(pipeline, history_size=3)
    blank = np.full((HEIGHT, WIDTH, 3), 100, np.uint8)
    for i in range(5):
        processor.process(video_frame(blank, i))
    records = processor.history()
    assert len(records) == 3
    assert processor.history(since=records[0].time) == [r for r in records[1:]]
    assert processor.stats().processed == 5


def test_status_file_reports_frames(pipeline, face_frame, tmp_path):
    status = tmp_path / "status.json"
    processor = live.LiveProcessor(pipeline, status_file=status)
    processor.process(video_frame(face_frame))
    data = json.loads(status.read_text())
    assert data["processed"] == 1
    assert sum(data["counts"].values()) == 1
    assert live.status_file_from_env({live.STATUS_FILE_ENV: str(status)}) == status
    assert live.status_file_from_env({}) is None


def test_two_sessions_write_their_own_counters_into_the_status_file(pipeline, face_frame, tmp_path):
    status = tmp_path / "status.json"
    first = live.LiveProcessor(pipeline, status_file=status)
    second = live.LiveProcessor(pipeline, status_file=status)
    for _ in range(3):
        first.process(video_frame(face_frame))
    second.process(video_frame(face_frame))
    data = json.loads(status.read_text())
    assert data["processed"] == 4  # all sessions together
    sessions = data["sessions"]
    assert sessions[str(first.session_id)]["processed"] == 3
    assert sessions[str(second.session_id)]["processed"] == 1
    assert first.session_id != second.session_id


def test_session_slots_admit_up_to_capacity_and_free_on_release_or_idle():
    slots = live.SessionSlots(2, idle_s=0.3)
    assert slots.claim(1) and slots.claim(2)
    assert slots.claim(1)  # a holder keeps its slot
    assert not slots.claim(3) and slots.full() and slots.full(3) and not slots.full(1)
    slots.release(2)
    assert slots.claim(3) and slots.holds(3) and slots.in_use() == 2
    time.sleep(0.4)  # nobody claimed for longer than idle_s: both slots are free again
    assert slots.in_use() == 0 and not slots.holds(1)
    assert slots.claim(4)


def test_capacity_zero_refuses_every_session():
    slots = live.SessionSlots(0)
    assert slots.full() and not slots.claim(1)


def test_a_session_beyond_capacity_gets_its_frames_back_unprocessed(pipeline, face_frame):
    slots = live.SessionSlots(1)
    inside = live.LiveProcessor(pipeline, slots=slots)
    outside = live.LiveProcessor(pipeline, slots=slots)
    inside.process(video_frame(face_frame))
    frame = video_frame(face_frame)
    assert outside.process(frame) is frame  # untouched, not annotated
    assert outside.refused == 1 and outside.stats().processed == 0
    inside.release_slot()  # the first session stopped: the second one gets in
    assert outside.process(video_frame(face_frame)) is not frame
    assert outside.stats().processed == 1 and inside.process(frame) is frame


@pytest.mark.parametrize(
    ("value", "expected"), [("", live.DEFAULT_MAX_SESSIONS), (" 3 ", 3), ("0", 0)]
)
def test_max_sessions_from_env(value, expected):
    assert live.max_sessions_from_env({live.MAX_SESSIONS_ENV: value}) == expected
    assert live.max_sessions_from_env({}) == live.DEFAULT_MAX_SESSIONS


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_bad_max_sessions_is_one_clear_sentence(value):
    with pytest.raises(FacemaskError, match="FACEMASK_LIVE_MAX_SESSIONS must be a whole number"):
        live.max_sessions_from_env({live.MAX_SESSIONS_ENV: value})


def test_counts_per_second_averages_whole_seconds():
    labels = ("with_mask", "without_mask")
    base = 1_700_000_000.0
    records = [
        live.FrameRecord(base + 0.1, (("with_mask", 1), ("without_mask", 0)), 5.0),
        live.FrameRecord(base + 0.6, (("with_mask", 2), ("without_mask", 1)), 5.0),
        live.FrameRecord(base + 1.2, (("with_mask", 0), ("without_mask", 1)), 5.0),
        live.FrameRecord(base - 100, (("with_mask", 9), ("without_mask", 9)), 5.0),
    ]
    series = live.counts_per_second(sorted(records, key=lambda r: r.time), labels, window_s=60)
    assert series["with_mask"] == [1.5, 0.0]
    assert series["without_mask"] == [0.5, 1.0]
    assert len(series["time"]) == 2
    figure = charts.counts_figure(series, labels)
    assert [trace.name for trace in figure.data] == ["Mask", "No mask"]
    assert live.counts_per_second([], labels) == {"time": [], "with_mask": [], "without_mask": []}


# -- ICE servers -------------------------------------------------------------------------------
def test_ice_servers_default_to_none_so_nothing_is_contacted():
    assert webrtc.rtc_configuration({}) == {"iceServers": []}
    assert webrtc.rtc_configuration({webrtc.ICE_SERVERS_ENV: "  "}) == {"iceServers": []}


def test_ice_servers_from_env_json():
    servers = [
        {"urls": "stun:stun.example.org:3478"},
        {"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "secret"},
    ]
    env = {webrtc.ICE_SERVERS_ENV: json.dumps(servers)}
    assert webrtc.rtc_configuration(env) == {"iceServers": servers}
    wrapped = {webrtc.ICE_SERVERS_ENV: json.dumps({"iceServers": servers})}
    assert webrtc.rtc_configuration(wrapped) == {"iceServers": servers}


def test_ice_servers_from_a_file(tmp_path):
    path = tmp_path / "ice.json"
    path.write_text(json.dumps([{"urls": "turns:turn.example.org:443", "username": "u"}]))
    config = webrtc.rtc_configuration({webrtc.ICE_SERVERS_FILE_ENV: str(path)})
    assert config == {"iceServers": [{"urls": "turns:turn.example.org:443", "username": "u"}]}
    with pytest.raises(FacemaskError, match="could not be read"):
        webrtc.rtc_configuration({webrtc.ICE_SERVERS_FILE_ENV: str(tmp_path / "missing.json")})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[{urls: stun}", "not valid JSON"),
        ('{"urls": "stun:x"}', "must be a JSON list"),
        ('["stun:x"]', 'must be an object with "urls"'),
        ('[{"urls": "http://x"}]', "must start with stun:"),
        ('[{"urls": []}]', "must start with stun:"),
        ('[{"urls": "turn:x", "credential": 5}]', "credential .* must be a string"),
        ('[{"urls": "turn:x", "password": "p"}]', "Unknown ICE server field"),
    ],
)
def test_bad_ice_servers_raise_one_clear_sentence(value, message):
    with pytest.raises(FacemaskError, match=message) as caught:
        webrtc.rtc_configuration({webrtc.ICE_SERVERS_ENV: value})
    assert webrtc.ICE_SERVERS_ENV in str(caught.value)
    assert "\n" not in str(caught.value)


# -- library workarounds -----------------------------------------------------------------------
@pytest.fixture()
def restore_loopback():
    yield
    webrtc.set_loopback_only(False)


def test_loopback_mode_follows_the_env_var_and_undoes_itself(restore_loopback):
    import aioice.ice

    original_hosts = aioice.ice.get_host_addresses
    original_add = aioice.ice.Connection.add_remote_candidate
    assert webrtc.apply_loopback_mode({}) is False
    assert aioice.ice.get_host_addresses is original_hosts

    assert webrtc.apply_loopback_mode({webrtc.LOOPBACK_ENV: "1"}) is True
    assert webrtc.loopback_only()
    assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
    webrtc.apply_loopback_mode({webrtc.LOOPBACK_ENV: "1"})  # idempotent
    assert webrtc.loopback_only()

    assert webrtc.apply_loopback_mode({webrtc.LOOPBACK_ENV: "0"}) is False
    assert aioice.ice.get_host_addresses is original_hosts
    assert aioice.ice.Connection.add_remote_candidate is original_add


def test_loopback_mode_gathers_and_accepts_only_127_0_0_1(restore_loopback):
    from aioice import Candidate, Connection

    webrtc.set_loopback_only(True)

    def candidate(host: str, port: int) -> Candidate:
        return Candidate("f", 1, "udp", 1, host, port, "host")

    async def exercise() -> tuple[list[str], list[str]]:
        connection = Connection(ice_controlling=True, components=1)
        try:
            await connection.gather_candidates()
            await connection.add_remote_candidate(candidate("192.0.2.2", 5000))
            await connection.add_remote_candidate(candidate("127.0.0.1", 5001))
            local = [c.host for c in connection.local_candidates]
            remote = [c.host for c in connection.remote_candidates]
        finally:
            await connection.close()
        return local, remote

    local, remote = asyncio.run(exercise())
    assert local == ["127.0.0.1"]
    assert remote == ["127.0.0.1"]


def test_stale_state_fix_neutralises_the_run_count_once():
    from streamlit_webrtc import component

    webrtc.undo_stale_state_fix()  # in case a page run in this process applied it
    original = component.get_script_run_count
    assert original.__module__ == "streamlit_webrtc.session_info"
    try:
        assert webrtc.fix_stale_state_reset() is True
        patched = component.get_script_run_count
        assert patched is not original
        assert patched(object()) is None
        assert webrtc.fix_stale_state_reset() is True
        assert component.get_script_run_count is patched, "applied twice"
    finally:
        webrtc.undo_stale_state_fix()
    assert component.get_script_run_count is original


# -- the page, up to the point where it would open the camera ---------------------------------
APP = Path(__file__).resolve().parent.parent / "app.py"


def run_live_page(monkeypatch, models_dir: Path, runs_dir: Path, **env: str):
    """app.py's server-side Live page under AppTest; it must stop before the WebRTC component."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FACEMASK_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("FACEMASK_RUNS_DIR", str(runs_dir))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.switch_page("app_pages/live.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Live webcam"
    return at


def test_live_page_without_a_model_says_how_to_get_one(monkeypatch, tmp_path):
    at = run_live_page(monkeypatch, tmp_path / "no-models", tmp_path / "no-runs")
    assert any("No model is available yet" in info.value for info in at.info)


def test_live_page_with_bad_ice_servers_shows_one_sentence(monkeypatch, tmp_path, model_copy):
    at = run_live_page(
        monkeypatch, model_copy.parent, tmp_path / "no-runs", FACEMASK_ICE_SERVERS="[{urls:"
    )
    [error] = at.error
    assert error.value.startswith("The ICE servers in FACEMASK_ICE_SERVERS are not valid JSON")
    assert "Traceback" not in error.value


def _sliders(at) -> tuple[float, int]:
    by_label = {slider.label: slider.value for slider in at.sidebar.slider}
    return by_label["Minimum detector score"], by_label["Minimum face size (px)"]


def test_a_full_server_says_so_and_the_sidebar_shows_the_webcam_preset(
    monkeypatch, tmp_path, shipped_model_dir
):
    at = run_live_page(
        monkeypatch, shipped_model_dir.parent, tmp_path / "no-runs", FACEMASK_LIVE_MAX_SESSIONS="0"
    )
    [warning] = at.warning
    assert warning.value.startswith("The server is busy")
    assert "](./)" in warning.value  # the in-browser page: the app's default page, at its root
    assert _sliders(at) == (WEBCAM.min_score, WEBCAM.min_face)
    assert preset_caption("webcam") in [c.value for c in at.sidebar.caption]

    at.sidebar.slider(key="sidebar_min_score_webcam").set_value(0.8).run()
    at.switch_page("app_pages/upload.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert _sliders(at) == (PHOTO.min_score, PHOTO.min_face)  # Upload runs the PHOTO preset
    at.switch_page("app_pages/live.py").run()
    assert _sliders(at) == (0.8, WEBCAM.min_face)  # each preset keeps its own choice


@pytest.fixture()
def keras_cleanup_restored():
    """Leave Streamlit's per-run cleanup as this test found it."""
    from streamlit.runtime.scriptrunner import script_runner

    before = script_runner._clean_problem_modules
    yield
    script_runner._clean_problem_modules = before


def test_the_app_stops_streamlit_clearing_keras_after_every_run(
    monkeypatch, tmp_path, shipped_model_dir, keras_cleanup_restored
):
    import sys

    import keras  # noqa: F401  (in sys.modules, as in the server once a detector loaded)
    from streamlit.testing.v1 import AppTest

    import ui

    calls = []
    backend = sys.modules["keras"].backend  # what Streamlit's cleanup looks up
    monkeypatch.setattr(backend, "clear_session", lambda *a, **k: calls.append(1))
    ui.undo_skip_keras_clear_session()
    AppTest.from_string("import streamlit as st\nst.write('hi')").run()
    assert calls, "Streamlit no longer clears Keras after a run: the workaround can go"

    calls.clear()
    run_live_page(
        monkeypatch, shipped_model_dir.parent, tmp_path / "no-runs", FACEMASK_LIVE_MAX_SESSIONS="0"
    ).run()
    assert calls == []
