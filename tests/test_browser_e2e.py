"""The dashboard in a real headless Chromium: the live webcam page end to end, then every page.

A fake camera plays a real face photo (a .y4m written here); the app runs `streamlit run
serve.py` (harness.browser.start_app) on a free port with a tiny real model and serves WebRTC
over 127.0.0.1 only (FACEMASK_WEBRTC_LOOPBACK_ONLY). The server proves it processed frames and
found the face by writing FACEMASK_TEST_STATUS_FILE. Screenshots go to test-output/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin

import cv2
import numpy as np
import pytest

from facemask.images import load_image
from harness import browser as harness
from harness.browser import (
    CAMERA_PHOTOS,
    WEBRTC_IFRAME,
    App,
    camera_picture,
    process_memory_mb,
    write_y4m,
)

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "test-output" / "screenshots"
APP_MEMORY_LIMIT_MB = 2048
"""The app with the default model and one live session stays under 2 GB resident."""
SHIPPED_MODEL = REPO / "models" / "mobilenetv2"
LIVE_PATH = "/live"
"""The server-side Live page (the app's root is Live in your browser)."""

_wait_for = harness.wait_for
_read_status = harness.read_status
_tail = harness.tail


def _chromium() -> str:
    try:
        return harness.chromium()
    except harness.BrowserMissing as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{exc}; CI must run the browser test.")
        pytest.skip(str(exc))


@contextmanager
def start_app(
    tmp_path: Path, model_dir: Path, address: str = "127.0.0.1", **env_vars: str
) -> Iterator[App]:
    """harness.start_app: the app on a free port in test mode, serving a copy of `model_dir`,
    listening on `address` (0.0.0.0: as if reachable from a network)."""
    with harness.start_app(tmp_path, model_dir, address=address, **env_vars) as app:
        yield app


@pytest.fixture(scope="module")
def app_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[App]:
    """The app (see `start_app`); yields (base URL, status file, server log, pid).

    It serves a copy of the shipped default model when the repository has it (what users run,
    and what the screenshots should show), else the tests' tiny model.
    """
    _chromium()  # skip or fail before starting anything
    model_dir = SHIPPED_MODEL
    if not (model_dir / "card.json").is_file():
        model_dir = request.getfixturevalue("tiny_model_dir")
    with start_app(tmp_path_factory.mktemp("app"), model_dir) as app:
        yield app


def _server_memory(pid: int) -> dict:
    """Current and peak resident memory of the app server, also written to
    test-output/app-memory.json for docs/measurements.md."""
    memory = {k: round(v) for k, v in process_memory_mb(pid).items()}
    (REPO / "test-output").mkdir(exist_ok=True)
    (REPO / "test-output" / "app-memory.json").write_text(json.dumps(memory) + "\n")
    return memory


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


@pytest.fixture()
def launch_browser(tmp_path: Path):
    """`launch(clip)` (see `browsers`), closed after the test."""
    pytest.importorskip("playwright.sync_api")
    _chromium()
    with harness.browsers(tmp_path) as launch:
        yield launch


@pytest.fixture()
def people_picture(face_images: list[Path]) -> np.ndarray:
    """Two people from tests/data/faces side by side, one with a mask (640x480 RGB)."""
    by_name = {p.name: p for p in face_images}
    return camera_picture([load_image(by_name[name]) for name in CAMERA_PHOTOS])


@pytest.fixture()
def camera_clip(tmp_path: Path, people_picture: np.ndarray) -> Path:
    """The fake camera's clip: `people_picture`, one second of it."""
    clip = tmp_path / "faces.y4m"
    write_y4m(clip, people_picture)
    return clip


def _video_state(frame) -> dict:
    return frame.locator("video").evaluate(
        "v => ({width: v.videoWidth, height: v.videoHeight, ready: v.readyState,"
        " paused: v.paused, time: v.currentTime})"
    )


def _wait_until_idle(page) -> None:
    """Wait until Streamlit finished the script run and every element has drawn itself."""
    page.wait_for_timeout(500)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=90_000)
    skeletons = page.locator('[data-testid="stSkeleton"]')
    _wait_for("the page's elements to load", lambda: skeletons.count() == 0, timeout=60)


def _screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _no_exceptions(page, name: str) -> None:
    shown = page.locator('[data-testid="stException"]')
    assert shown.count() == 0, f"the {name} page shows a traceback: {shown.first.inner_text()}"


def _start_and_wait_for_faces(webrtc, status_file: Path, log_path: Path, frames: int) -> dict:
    """Press Start; wait until the server processed `frames` more frames and saw a face."""
    before = _read_status(status_file).get("processed", 0)
    webrtc.get_by_role("button", name="Start").click()

    def faces_seen() -> dict | None:
        status = _read_status(status_file)
        enough = status.get("processed", 0) >= before + frames
        return status if enough and sum(status.get("counts", {}).values()) >= 1 else None

    try:
        return _wait_for(f"{frames} processed frames showing a face", faces_seen, timeout=120)
    except AssertionError as exc:
        details = f"status: {_read_status(status_file)}\n{_tail(log_path)}"
        raise AssertionError(f"{exc}\n{details}") from None


def _wait_until_no_frames(status_file: Path, quiet: float, what: str) -> None:
    """Wait until the server has processed no frame for `quiet` seconds."""
    _wait_for(
        f"no new frame for {quiet:.1f} s {what}",
        lambda: time.time() - _read_status(status_file)["time"] > quiet,
        timeout=quiet + 45,
    )


def _open_page(page, name: str, heading: str) -> None:
    page.get_by_role("link", name=name, exact=True).first.click()
    page.get_by_role("heading", name=heading).first.wait_for(timeout=90_000)
    _wait_until_idle(page)
    _no_exceptions(page, name)


def _upload_photo(page, photo: Path) -> int:
    """Upload one photo on the Upload page; wait for its annotated copy; return the face count."""
    page.locator('input[type="file"][accept*=".png"]').first.set_input_files(photo)
    page.locator('[data-testid="stImage"] img').first.wait_for(timeout=120_000)
    summary = page.get_by_text(re.compile(r"\d+ face\(s\) in 1 image\(s\)"))
    summary.wait_for(timeout=60_000)
    _wait_until_idle(page)
    return int(summary.inner_text().split()[0])


def test_live_page_streams_annotated_video_then_every_page_renders(
    app_server, launch_browser, camera_clip, people_picture, tmp_path
):
    base, status_file, log_path, server_pid = app_server
    page = launch_browser(camera_clip)
    page.goto(base + LIVE_PATH, wait_until="domcontentloaded")
    page.get_by_role("heading", name="Live webcam").wait_for(timeout=90_000)
    webrtc = page.frame_locator(WEBRTC_IFRAME)
    webrtc.get_by_role("button", name="Start").wait_for(state="visible", timeout=90_000)
    _no_exceptions(page, "Live")

    # 1. Start: the server receives frames, finds the faces, and the annotated video plays.
    first = _start_and_wait_for_faces(webrtc, status_file, log_path, frames=5)
    assert first["failed"] == 0
    _wait_for(
        "the annotated video to play",
        lambda: (lambda v: v["width"] > 0 and v["ready"] >= 2 and not v["paused"])(
            _video_state(webrtc)
        ),
        timeout=30,
    )
    shown_at = _video_state(webrtc)["time"]
    _wait_for(
        "the video's currentTime to advance",
        lambda: _video_state(webrtc)["time"] > shown_at + 0.5,
        timeout=30,
    )
    assert webrtc.locator("video").count() == 1

    # The chart column refreshes itself while the video plays. Plotly's 4.7 MB script is parsed
    # on first use: slow on a busy machine.
    page.get_by_text("frames processed").wait_for(timeout=60_000)
    page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=120_000)
    page.wait_for_timeout(1000)
    stale = page.locator('[data-stale="true"]')  # faded while the chart's fragment reruns
    _wait_for("the chart between two refreshes", lambda: stale.count() == 0, timeout=30, poll=0.1)
    _screenshot(page, "live")

    # "No new frame" must outlast several of the gaps seen between frames while playing.
    playing = _read_status(status_file)
    gap = (playing["time"] - first["time"]) / max(playing["processed"] - first["processed"], 1)
    quiet = max(3.0, 4 * gap)

    # 2. Leave the page while the video plays: the server stops processing.
    _open_page(page, "Upload", "Upload photos or a video")
    _wait_until_no_frames(status_file, quiet, "after leaving the Live page")
    photo = tmp_path / "two-people.png"
    cv2.imwrite(str(photo), cv2.cvtColor(people_picture, cv2.COLOR_RGB2BGR))
    assert _upload_photo(page, photo) >= 1
    _no_exceptions(page, "Upload")
    _screenshot(page, "upload")
    _open_page(page, "Training", "Training and comparison")
    _screenshot(page, "training")

    # 3. Come back and start again (the state left behind must not block a new stream),
    #    then Stop: Start reappears and processing stops.
    _open_page(page, "Live (on the server)", "Live webcam")
    webrtc = page.frame_locator(WEBRTC_IFRAME)
    _start_and_wait_for_faces(webrtc, status_file, log_path, frames=3)
    memory = _server_memory(server_pid)  # every page visited, a live session streaming
    assert memory["peak_rss_mb"] < APP_MEMORY_LIMIT_MB, memory
    webrtc.get_by_role("button", name="Stop").click()
    webrtc.get_by_role("button", name="Start").wait_for(state="visible", timeout=60_000)
    _wait_until_no_frames(status_file, quiet, "after Stop")
    _no_exceptions(page, "Live")

    for name in ("live", "upload", "training"):
        image = cv2.imread(str(SCREENSHOTS / f"{name}.png"))
        assert image is not None and image.shape[1] >= 1000, f"{name}.png was not written"


def test_a_refused_camera_gets_an_explanation_and_no_stream(app_server, launch_browser):
    base, status_file, *_ = app_server
    if status_file.exists():  # a stream of an earlier test may take a moment to wind down
        _wait_until_no_frames(status_file, 3.0, "before the test")
    processed = _read_status(status_file).get("processed", 0)
    page = launch_browser(None)
    page.goto(base + LIVE_PATH, wait_until="domcontentloaded")
    page.get_by_role("heading", name="Live webcam").wait_for(timeout=90_000)
    webrtc = page.frame_locator(WEBRTC_IFRAME)
    webrtc.get_by_role("button", name="Start").click(timeout=90_000)

    webrtc.get_by_text("NotAllowedError").wait_for(timeout=30_000)
    page.get_by_text("The browser blocked the camera").wait_for()
    webrtc.get_by_role("button", name="Start").wait_for(state="visible")
    _no_exceptions(page, "Live")
    assert _read_status(status_file).get("processed", 0) == processed


def test_two_live_sessions_both_get_annotated_frames_and_neither_starves(
    app_server, launch_browser, camera_clip
):
    base, status_file, log_path, _ = app_server
    if status_file.exists():  # a stream of an earlier test may take a moment to wind down
        _wait_until_no_frames(status_file, 3.0, "before the test")
    earlier = set(_read_status(status_file).get("sessions", {}))
    pages = [launch_browser(camera_clip) for _ in range(2)]
    frames = []
    for page in pages:
        page.goto(base + LIVE_PATH, wait_until="domcontentloaded")
        page.get_by_role("heading", name="Live webcam").wait_for(timeout=90_000)
        frames.append(page.frame_locator(WEBRTC_IFRAME))
    for webrtc in frames:
        webrtc.get_by_role("button", name="Start").click(timeout=90_000)

    def ours() -> dict[str, dict]:
        sessions = _read_status(status_file).get("sessions", {})
        return {k: v for k, v in sessions.items() if k not in earlier}

    try:
        _wait_for(
            "both sessions to get annotated frames",
            lambda: len(ours()) == 2 and all(s["processed"] >= 5 for s in ours().values()),
            timeout=180,
            poll=0.5,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstatus: {ours()}\n{_tail(log_path)}") from None
    # Both keep going: over a window, each session gets frames, and a fair share of them.
    window = 20.0
    before = ours()
    time.sleep(window)
    after = ours()
    got = {k: after[k]["processed"] - before[k]["processed"] for k in after}
    assert all(n >= 0.5 * window for n in got.values()), got  # each >= 0.5 annotated FPS
    assert min(got.values()) >= max(got.values()) / 3, got  # neither starves the other
    assert all(s["failed"] == 0 for s in after.values())
    for page in pages:
        _no_exceptions(page, "Live")

    # Stop both: Start comes back and the server processes nothing more.
    for webrtc in frames:
        webrtc.get_by_role("button", name="Stop").click()
    for webrtc in frames:
        webrtc.get_by_role("button", name="Start").wait_for(state="visible", timeout=60_000)
    _wait_until_no_frames(status_file, 3.0, "after both pressed Stop")


def test_beyond_capacity_a_session_is_told_the_server_is_busy(
    tmp_path_factory, launch_browser, camera_clip, tiny_model_dir
):
    """With room for one stream, a second visitor gets the busy sentence until the first stops."""
    work = tmp_path_factory.mktemp("busy-app")
    with start_app(work, tiny_model_dir, FACEMASK_LIVE_MAX_SESSIONS="1") as app:
        first, second = launch_browser(camera_clip), launch_browser(camera_clip)
        first.goto(app.base + LIVE_PATH, wait_until="domcontentloaded")
        webrtc = first.frame_locator(WEBRTC_IFRAME)
        _start_and_wait_for_faces(webrtc, app.status, app.log, frames=3)

        second.goto(app.base + LIVE_PATH, wait_until="domcontentloaded")
        busy = second.get_by_text("The server is busy")
        busy.wait_for(timeout=90_000)
        warning = second.get_by_test_id("stAlertContentWarning")
        href = warning.get_by_role("link", name="Live in your browser").get_attribute("href")
        assert urljoin(second.url, href) == f"{app.base}/"  # the in-browser page, the root
        assert second.locator(WEBRTC_IFRAME).count() == 0  # no camera offered at all
        _no_exceptions(second, "Live")

        webrtc.get_by_role("button", name="Stop").click()  # the slot is given back
        webrtc.get_by_role("button", name="Start").wait_for(state="visible", timeout=60_000)
        second.reload(wait_until="domcontentloaded")
        second_webrtc = second.frame_locator(WEBRTC_IFRAME)
        second_webrtc.get_by_role("button", name="Start").wait_for(timeout=90_000)
        assert busy.count() == 0
