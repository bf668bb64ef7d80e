"""Live in your browser (the app's landing page) in a real headless Chromium.

The whole pipeline runs in the page (BlazeFace and the classifier on TF.js): the tests check that
the page contacts nothing outside the app, finds and labels the two people in front of the fake
camera, reports its FPS, stops on Stop, explains a refused camera, agrees with the Python
pipeline on real photos, and that a first visit and a repeat visit stay within their byte
budgets counted at the server; and that the shipped 3-class model, chosen in the sidebar, runs in
the page, agrees with Python and draws its legend. The app server (serving the default and the
3-class model) and the browser come from harness.browser (the browser through
tests/test_browser_e2e.py's fixtures).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import gzip
import itertools
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest
import test_browser_e2e as e2e
from conftest import REPO, require_shared
from test_live import worn_wrong_photo

import browser_live
from browser_live import serving
from facemask import BARE, MASKED, WORN_WRONG, browser
from facemask.classify import MaskClassifier, read_card
from facemask.detect import WEBCAM, FaceDetector, box_iou
from facemask.errors import ModelError
from facemask.files import TFLITE_FILE
from facemask.images import load_image
from facemask.pipeline import (
    CROP_MARGIN,
    LABEL_COLORS_RGB,
    LABEL_TEXT,
    Detection,
    FaceTracker,
    Pipeline,
    annotate,
    crop_faces,
)
from harness import browser as harness
from harness.browser import BROWSER_IFRAME, CAMERA_PHOTOS, ByteCounter, camera_picture, write_y4m

launch_browser = e2e.launch_browser  # the same fixtures: a real headless Chromium
people_picture = e2e.people_picture  # the two people in front of the fake camera
camera_clip = e2e.camera_clip
IFRAME = BROWSER_IFRAME
SHIPPED_MODEL = REPO / "models" / "mobilenetv2"
THREE_CLASS_MODEL = REPO / "models" / "mobilenetv2-3class"
"""Ships beside the default."""
THREE_LABELS = (WORN_WRONG, MASKED, BARE)
MAX_SIDE = 1280
"""Photos are shrunk to this long side before both pipelines see them (transfer size)."""
MIN_IOU = 0.9
"""A face the page finds matches Python's when their boxes overlap at least this much."""
FIRST_VISIT_BYTES = 4_000_000
"""Everything a first visit costs over the wire (page, component, worker, both models)."""
REPEAT_VISIT_BYTES = 150_000
"""A repeat visit in the same browser: what is not cached for good (HTML, the session)."""
MIN_PHOTOS = 20
SCENE_PHOTOS = 14
"""Scene photos with faces (found by Python's WEBCAM preset) taken from maskilc-scenes."""
PORTRAITS_PER_CLASS = 6


@pytest.fixture(scope="module")
def built_frontend() -> None:
    """The component's static build (`make browser`); built here when node_modules has it."""
    if browser_live.is_built():
        return
    script = REPO / "browser_live" / "frontend" / "build.mjs"
    if not (REPO / "node_modules" / "esbuild").is_dir():
        pytest.skip("node_modules lacks the frontend's packages: run `make test` (npm ci).")
    subprocess.run(["node", str(script)], cwd=REPO, check=True, timeout=300)


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """The app in test mode (harness.start_app) serving copies of the shipped default model
    (the tests' tiny model without it) and of the shipped 3-class model: the sidebar offers
    both, the default first. Yields (base URL, status file, server log, pid)."""
    e2e._chromium()  # skip or fail before starting anything
    work = tmp_path_factory.mktemp("app")
    default = SHIPPED_MODEL
    if not (default / "card.json").is_file():
        default = request.getfixturevalue("tiny_model_dir")
    for model in (default, THREE_CLASS_MODEL):
        if (model / "card.json").is_file():
            shutil.copytree(model, work / "models" / model.name)
    options = ("--server.disconnectedSessionTTL", str(SESSION_TTL_S))
    with harness.start_app(
        work, None, options=options, FACEMASK_MODELS_DIR=str(work / "models")
    ) as app:
        yield app


SESSION_TTL_S = 3
"""The test server keeps a closed page's session this long for a reconnect (default 120 s)."""


def _open(page, base: str):
    """Open the app's root (Live in your browser); wait for the component and its models;
    return (frame locator, frame)."""
    page.goto(f"{base}/", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Live in your browser").wait_for(timeout=90_000)
    component = page.frame_locator(IFRAME)
    component.get_by_role("button", name="Start").wait_for(state="visible", timeout=90_000)
    frame = e2e._wait_for(
        "the component's frame",
        lambda: next((f for f in page.frames if "browser_live.browser_live" in f.url), None),
        timeout=30,
    )
    status = component.locator("#status")
    e2e._wait_for(
        "the models to load in the page",
        lambda: "ready" in status.inner_text() or component.locator("#message").is_visible(),
        timeout=180,
        poll=0.5,
    )
    message = component.locator("#message")
    assert not message.is_visible(), message.inner_text()
    return component, frame


def _stats(frame) -> dict:
    return frame.evaluate("() => JSON.parse(JSON.stringify(window.facemaskStats))")


def _start(component, frame, frames: int, faces: int) -> dict:
    """Press Start; wait until the page processed `frames` frames showing `faces` faces."""
    component.get_by_role("button", name="Start").click()
    return e2e._wait_for(
        f"{frames} processed frames showing {faces} faces",
        lambda: (lambda s: s if s["frames"] >= frames and len(s["faces"]) == faces else None)(
            _stats(frame)
        ),
        timeout=180,
        poll=0.5,
    )


@pytest.mark.browser
def test_browser_page_runs_the_pipeline_in_the_page_and_contacts_nothing_else(
    built_frontend,
    app_server,
    launch_browser,
    camera_clip,
):
    base = app_server[0]
    origin = urlsplit(base)[:2]
    page = launch_browser(camera_clip)
    outside: list[str] = []
    csp: list[str] = []

    def check(url: str) -> None:
        if urlsplit(url)[:2] != origin and not url.startswith(("data:", "blob:")):
            outside.append(url)

    page.context.on("request", lambda request: check(request.url))
    page.on("websocket", lambda socket: check(socket.url.replace("ws", "http", 1)))
    page.on(
        "console",
        lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None,
    )
    component, frame = _open(page, base)
    e2e._no_exceptions(page, "Live in your browser")
    assert component.get_by_role("button", name="Stop").is_hidden()

    # Start: both people are found and labelled, frame after frame, with FPS and timings.
    stats = _start(component, frame, frames=20, faces=2)
    left, right = sorted(stats["faces"], key=lambda face: face["box"][0])
    assert (left["label"], right["label"]) == ("with_mask", "without_mask"), stats["faces"]
    width = frame.evaluate("() => document.getElementById('video').videoWidth")
    for face in stats["faces"]:
        x1, y1, x2, y2 = face["box"]
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 and face["confidence"] > 0.5
    assert left["box"][2] <= width / 2 <= right["box"][0]  # one person on each side
    assert stats["fps"] > 0 and stats["detectMs"] > 0 and stats["classifyMs"] > 0
    assert 0 < stats["classified"] < 1  # still faces reuse recent classifications (reuse.js)
    assert stats["backend"] in ("wasm", "webgl")
    assert "FPS" in component.locator("#status").inner_text()
    print(f"in-browser: {json.dumps({k: v for k, v in stats.items() if k != 'faces'})}")
    page.wait_for_timeout(500)
    e2e._wait_until_idle(page)
    e2e._screenshot(page, "browser")

    # Stop: the camera stops, and so does the processing.
    component.get_by_role("button", name="Stop").click()
    component.get_by_role("button", name="Start").wait_for(state="visible", timeout=30_000)
    stopped = _stats(frame)["frames"]
    page.wait_for_timeout(1500)
    assert _stats(frame)["frames"] == stopped and not _stats(frame)["running"]
    assert frame.evaluate("() => document.getElementById('video').srcObject") is None

    assert not outside, f"the page contacted something outside the app: {outside}"
    assert not csp, f"the page tried something its Content-Security-Policy blocked: {csp}"


@pytest.mark.browser
def test_a_closed_pages_session_is_ended_once_its_time_is_up(
    built_frontend, app_server, launch_browser
):
    """Streamlit keeps a closed page's session for a reconnect and then only forgets it at the
    next visitor's arrival, never shutting it down: the app's janitor ends it within seconds
    of its time, so what a crowd held goes when the crowd has gone (bench/browser_crowd.py)."""
    ended = re.compile(r"ended (\d+) session\(s\) disconnected for longer than the TTL")
    before = sum(int(n) for n in ended.findall(app_server.log.read_text(errors="replace")))
    pages = [launch_browser(None) for _ in range(2)]
    for page in pages:
        page.goto(f"{app_server.base}/", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Live in your browser").wait_for(timeout=90_000)
    for page in pages:
        page.context.close()
    e2e._wait_for(
        "the janitor to end both sessions",
        lambda: sum(int(n) for n in ended.findall(app_server.log.read_text(errors="replace")))
        >= before + 2,
        timeout=SESSION_TTL_S + 30,
        poll=1,
    )


@pytest.mark.browser
def test_a_refused_camera_gets_one_sentence(built_frontend, app_server, launch_browser):
    page = launch_browser(None)
    component, frame = _open(page, app_server[0])
    component.get_by_role("button", name="Start").click()
    component.get_by_text("The browser blocked the camera").wait_for(timeout=30_000)
    component.get_by_role("button", name="Start").wait_for(state="visible")
    assert _stats(frame)["frames"] == 0


@pytest.mark.browser
def test_a_classifier_that_fails_to_load_gets_one_sentence(
    built_frontend,
    app_server,
    launch_browser,
):
    page = launch_browser(None)
    page.context.route("**/browser_live.model_*/**", lambda route: route.abort())
    page.goto(f"{app_server[0]}/", wait_until="domcontentloaded")
    component = page.frame_locator(IFRAME)
    component.get_by_text("The models could not be loaded").wait_for(timeout=180_000)
    e2e._no_exceptions(page, "Live in your browser")


@pytest.mark.browser
def test_a_first_visit_costs_at_most_4_mb_and_a_repeat_visit_150_kb(
    built_frontend, app_server, launch_browser
):
    """Counted at the server (a relay in front of it): until both models are ready."""
    port = urlsplit(app_server[0]).port
    with ByteCounter(port) as counter:
        page = launch_browser(None)
        _open(page, counter.url)
        e2e._wait_until_idle(page)
        first_requests = collections.Counter(urlsplit(path).path for path in counter.requests)
        first = sum(counter.reset())
        page.goto("about:blank")
        page.wait_for_timeout(500)
        counter.reset()
        _open(page, counter.url)
        e2e._wait_until_idle(page)
        repeat_requests = [urlsplit(path).path for path in counter.requests]
        repeat = sum(counter.reset())
    immutable = [path for path in first_requests if serving.is_immutable(path)]
    figures = {
        "first_visit_bytes": first,
        "repeat_visit_bytes": repeat,
        "first_visit_requests": sum(first_requests.values()),
        "repeat_visit_requests": len(repeat_requests),
    }
    print(f"bytes over the wire: {figures}")
    (REPO / "test-output").mkdir(exist_ok=True)
    (REPO / "test-output" / "browser-load.json").write_text(json.dumps(figures) + "\n")
    assert len(immutable) >= 8  # the component's build, the models, Streamlit's bundles
    twice = [path for path in immutable if first_requests[path] > 1]
    assert not twice, f"fetched twice in one visit: {twice}"
    again = [path for path in repeat_requests if serving.is_immutable(path)]
    assert not again, f"fetched again on a repeat visit: {again}"
    assert first <= FIRST_VISIT_BYTES, figures
    assert repeat <= REPEAT_VISIT_BYTES, figures


def _serve(middleware: serving.AssetMiddleware, path: str, gzip_ok: bool = True):
    """One GET through the middleware: (status, headers, body)."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [(b"accept-encoding", b"gzip, deflate")] if gzip_ok else []
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    asyncio.run(middleware(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


@pytest.mark.parametrize(
    ("base", "path", "query", "location"),
    [
        ("", "/browser", b"", b"/"),
        ("", "/browser/", b"embed=true", b"/?embed=true"),
        ("facemask", "/facemask/browser", b"", b"/facemask/"),
    ],
)
def test_an_old_bookmark_finds_the_in_browser_page(base, path, query, location) -> None:
    reached: list[str] = []

    async def app(scope, receive, send) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"page"})

    moved = serving.MovedPages(app, base=base)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    for request_path in (path, path.replace("browser", "live")):
        scope = {"type": "http", "method": "GET", "path": request_path, "query_string": query}
        asyncio.run(moved(scope, receive, send))
    assert sent[0]["status"] == 308 and dict(sent[0]["headers"])[b"location"] == location
    assert reached == [path.replace("browser", "live")]  # other pages reach the app


def test_immutable_files_are_compressed_once_and_cached_for_good() -> None:
    calls: list[str] = []
    content = b"console.log('facemask');\n" * 200

    async def app(scope, receive, send) -> None:  # what Streamlit's routes answer
        calls.append(scope["path"])
        found = "missing" not in scope["path"]
        headers = [(b"content-type", b"text/javascript"), (b"cache-control", b"public")]
        await send({"type": "http.response.start", "status": 200 if found else 404,
                    "headers": headers})  # fmt: skip
        await send({"type": "http.response.body", "body": content if found else b""})

    middleware = serving.AssetMiddleware(app, base="")
    hashed = "/component/browser_live.browser_live/main-MEFJFUFJ.js"
    for gzip_ok in (True, True, False):
        status, headers, body = _serve(middleware, hashed, gzip_ok)
        assert status == 200 and headers[b"cache-control"] == serving.IMMUTABLE
        assert (gzip.decompress(body) if gzip_ok else body) == content
        assert headers.get(b"content-encoding") == (b"gzip" if gzip_ok else None)
        assert int(headers[b"content-length"]) == len(body)
    assert calls == [hashed]  # compressed once, then served from memory
    for path in ("/component/browser_live.browser_live/index.html", "/_stcore/health"):
        status, headers, body = _serve(middleware, path)
        assert headers[b"cache-control"] == b"public" and body == content  # untouched
    assert _serve(middleware, "/static/js/missing.AbCd1234.js")[0] == 404
    assert serving.is_immutable("/static/js/index.DormvYxC.js")
    assert serving.is_immutable("/component/browser_live.model_0123456789abcdef/model.json")
    assert not serving.is_immutable("/app/static/js/a.js")
    assert serving.is_immutable("/school/static/css/index.C1JORDN2.css", base="school")


def test_the_build_names_every_file_by_its_content(built_frontend) -> None:
    """Every file the page loads but index.html carries its hash; index.html lists them."""
    html = (browser_live.BUILD_DIR / "index.html").read_text()
    served = [p for p in browser_live.BUILD_DIR.iterdir() if not p.name.endswith(".LEGAL.txt")]
    for path in served:
        if path.name in ("index.html", "BUILT"):
            continue
        assert serving.is_immutable(f"/component/{serving.COMPONENT}/{path.name}"), path.name
    manifest = json.loads(html.split('name="facemask-assets" content=\'')[1].split("'")[0])
    names = [manifest["classifier"], manifest["detector"], *manifest["wasm"].values()]
    assert all((browser_live.BUILD_DIR / name).is_file() for name in names)
    assert "mediapipe" not in html and not any("mediapipe" in p.name for p in served)


def _photos(face_images: list[Path]) -> Iterator[tuple[str, np.ndarray]]:
    """Real photos with faces: tests/data/faces, dataset portraits, and scene photos, each read
    when the comparison gets to it (it stops once it has enough)."""
    paths = list(face_images)
    portraits = require_shared("datasets", "chandrikadeb7-face-mask")
    for label in ("with_mask", "without_mask"):
        files = sorted((portraits / label).glob("*.jpg"))
        paths += [files[i] for i in np.linspace(0, len(files) - 1, PORTRAITS_PER_CLASS).astype(int)]
    scenes = sorted((require_shared("datasets", "maskilc-scenes") / "images").glob("*.jpg"))
    return ((path.name, _shrunk(load_image(path))) for path in paths + scenes)


def _shrunk(rgb: np.ndarray) -> np.ndarray:
    """The photo with its long side at most MAX_SIDE."""
    scale = MAX_SIDE / max(rgb.shape[:2])
    if scale >= 1:
        return rgb
    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))


def _python_pipeline(frame, classifier: MaskClassifier) -> Pipeline:
    """Python's pipeline with the page's detector settings and `classifier`."""
    settings = frame.evaluate("() => window.facemaskSettings")
    detector = FaceDetector(
        dataclasses.replace(WEBCAM, min_score=settings["minScore"], min_face=settings["minFace"])
    )
    return Pipeline(detector, classifier)


def _agreement(
    frame, classifier: MaskClassifier, photos: Iterable[tuple[str, np.ndarray]], local: int
) -> dict:
    """The page's facemaskAnalyze and Python's Pipeline (the page's detector settings) on the
    same photos: the first `local` photos always, then photos where Python finds faces until
    2 * PORTRAITS_PER_CLASS + SCENE_PHOTOS of them. Asserts the same faces, box for box
    (IoU >= MIN_IOU), and the same labels; returns the figures."""
    settings = frame.evaluate("() => window.facemaskSettings")
    pipeline = _python_pipeline(frame, classifier)
    assert settings["labels"] == list(pipeline.labels)  # the page runs this model
    ious, same, differ, python_faces, matched, extra, used = [], [], [], 0, 0, 0, []
    for i, (name, rgb) in enumerate(photos):
        expected = pipeline.process(rgb)
        if not expected and i >= local:
            continue  # a scene where the webcam preset finds nobody: not a comparison
        used.append(name)
        found = frame.evaluate(
            "args => window.facemaskAnalyze(args)",
            {
                "width": rgb.shape[1],
                "height": rgb.shape[0],
                "rgb": base64.b64encode(rgb.tobytes()).decode(),
            },
        )
        python_faces += len(expected)
        extra += max(0, len(found) - len(expected))
        if expected and found:
            overlaps = box_iou([d.box for d in expected], [f["box"] for f in found])
            for j, det in enumerate(expected):
                k = int(np.argmax(overlaps[j]))
                if overlaps[j, k] >= MIN_IOU:
                    matched += 1
                    ious.append(float(overlaps[j, k]))
                    same.append(det.label == found[k]["label"])
                    if not same[-1]:
                        differ.append((name, det.probabilities, found[k]["probabilities"]))
        if len(used) - local >= 2 * PORTRAITS_PER_CLASS + SCENE_PHOTOS:
            break
    result = {
        "model": classifier.name,
        "photos": len(used),
        "python_faces": python_faces,
        f"matched_at_iou_{MIN_IOU}": matched,
        "extra_in_browser": extra,
        "same_label": round(100 * float(np.mean(same)), 2),
        "median_iou": round(float(np.median(ious)), 4),
        "settings": settings,
        "labels_differ": differ,
    }
    print(f"browser vs python: {result}")
    assert len(used) >= MIN_PHOTOS
    assert matched == python_faces and extra == 0, result  # the same faces, box for box
    assert result["same_label"] == 100.0, result
    return result


def _write_output(name: str, figures: dict) -> None:
    (REPO / "test-output").mkdir(exist_ok=True)
    (REPO / "test-output" / name).write_text(json.dumps(figures) + "\n")


@pytest.mark.browser
def test_browser_and_python_pipelines_agree_on_photos(
    built_frontend,
    app_server,
    launch_browser,
    face_images,
):
    if not (SHIPPED_MODEL / "card.json").is_file():
        pytest.skip("the shipped model is needed (the browser runs its TF.js export)")
    page = launch_browser(None)
    _, frame = _open(page, app_server[0])
    classifier = MaskClassifier(SHIPPED_MODEL)  # served float, as the page's export
    result = _agreement(frame, classifier, _photos(face_images), len(face_images))
    _write_output("browser-agreement.json", result)


def _choose_model(page, frame, model_dir: Path) -> None:
    """Choose the model in the sidebar's Classifier box; wait until the page has its labels."""
    name = model_dir.name
    page.get_by_test_id("stSelectbox").filter(has_text="Classifier").click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(name)} ")).click()
    labels = read_card(model_dir)["labels"]
    e2e._wait_for(
        f"the page to be given {name}'s labels",
        lambda: frame.evaluate("() => window.facemaskSettings.labels") == labels,
        timeout=60,
    )


def _overlay_pixels(frame) -> np.ndarray:
    """The page's drawing canvas (boxes, labels, legend) as height x width x RGBA."""
    width, height, data = frame.evaluate(
        """() => { const c = document.getElementById("overlay");
                   const image = c.getContext("2d").getImageData(0, 0, c.width, c.height);
                   return [c.width, c.height, Array.from(image.data)]; }"""
    )
    return np.asarray(data, np.uint8).reshape(height, width, 4)


_RECORD_TEXTS = """
(() => {  // every text the page draws on a canvas, for the test to read
  const fillText = CanvasRenderingContext2D.prototype.fillText;
  window.drawnTexts = new Set();
  CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
    window.drawnTexts.add(String(text));
    return fillText.call(this, text, ...rest);
  };
})();
"""


@pytest.mark.browser
def test_the_three_class_model_chosen_in_the_sidebar_runs_agrees_and_shows_its_legend(
    built_frontend, app_server, launch_browser, face_images, tmp_path
):
    """The shipped 3-class model's TF.js export in the page: chosen in the sidebar; its faces
    agree with Python's pipeline on photos (masks drawn worn wrong among them) and on the fake
    camera's frames (a mask, a mask under the nose, no mask); amber box and legend drawn."""
    if not (THREE_CLASS_MODEL / "card.json").is_file():
        pytest.skip("models/mobilenetv2-3class is not in this checkout")
    with FaceDetector(WEBCAM) as detector:
        worn_wrong = worn_wrong_photo(detector)
    by_name = {p.name: p for p in face_images}
    masked, bare = (load_image(by_name[name]) for name in CAMERA_PHOTOS)
    picture = camera_picture([masked, worn_wrong, bare])
    clip = tmp_path / "three.y4m"
    write_y4m(clip, picture)
    page = launch_browser(clip)
    page.add_init_script(_RECORD_TEXTS)
    component, frame = _open(page, app_server[0])
    _choose_model(page, frame, THREE_CLASS_MODEL)
    e2e._no_exceptions(page, "Live in your browser")

    # The same faces and labels as Python on photos: a mask drawn under the nose, then the
    # photos the default model is compared on (maskilc's scenes hold masks worn wrong too).
    photos = itertools.chain([("worn-wrong-" + CAMERA_PHOTOS[1], worn_wrong)], _photos(face_images))
    # Python serves this model's int8 TFLite; the page, a float TF.js export. Quantization moves
    # borderline faces (the card: max prob diff 0.10 against Keras), so the port is held against
    # the float TFLite, made from the same float weights as the TF.js exports.
    classifier = MaskClassifier(THREE_CLASS_MODEL, tflite_file=TFLITE_FILE)
    result = _agreement(frame, classifier, photos, 1 + len(face_images))
    _write_output("browser-agreement-3class.json", result)

    # Live: the camera's three people, labelled as Python labels the same frame.
    stats = _start(component, frame, frames=10, faces=3)
    size = frame.evaluate(
        "() => (v => [v.videoWidth, v.videoHeight])(document.getElementById('video'))"
    )
    camera = cv2.cvtColor(cv2.cvtColor(picture, cv2.COLOR_RGB2YUV_I420), cv2.COLOR_YUV2RGB_I420)
    camera = cv2.resize(camera, size, interpolation=cv2.INTER_AREA)  # what the page was sent
    expected = _python_pipeline(frame, classifier).process(camera)
    faces = sorted(stats["faces"], key=lambda face: face["box"][0])
    assert [f["label"] for f in faces] == [MASKED, WORN_WRONG, BARE], faces
    overlaps = box_iou([d.box for d in expected], [f["box"] for f in faces])
    assert overlaps.shape == (3, 3) and (overlaps.max(axis=1) >= MIN_IOU).all(), overlaps
    assert [faces[int(k)]["label"] for k in overlaps.argmax(axis=1)] == [d.label for d in expected]

    # The legend: the three names drawn, each swatch in its colour, bottom-left; an amber box.
    names = [LABEL_TEXT[label] for label in classifier.labels]  # in the card's order
    legend = component.locator("#overlay").get_attribute("aria-label")
    assert legend == "Legend: " + ", ".join(names)
    assert set(names) <= set(frame.evaluate("() => [...window.drawnTexts]"))
    overlay = _overlay_pixels(frame)
    band = overlay[-40:, : overlay.shape[1] // 2]
    for label in classifier.labels:  # filled rectangles: exact colours, opaque
        assert np.all(band == (*LABEL_COLORS_RGB[label], 255), axis=2).sum() >= 100, label
    x1, y1, x2, y2 = faces[1]["box"]
    edge = overlay[y1 + 5 : y2 - 5, max(x1 - 1, 0) : x1 + 1]  # 1 px lines straddle two columns
    near = np.abs(edge[..., :3].astype(int) - LABEL_COLORS_RGB[WORN_WRONG]).max(axis=2) <= 4
    assert (near & (edge[..., 3] > 0)).any(axis=1).mean() > 0.9  # the worn-wrong face's box: amber
    e2e._screenshot(page, "browser-3class")


def test_frontend_sources_pin_their_packages() -> None:
    """Everything the build bundles or copies is pinned to one exact version in package.json."""
    package = json.loads((REPO / "package.json").read_text())
    pinned = {**package["dependencies"], **package.get("devDependencies", {})}
    for name in (
        "@tensorflow/tfjs-core",
        "@tensorflow/tfjs-converter",
        "@tensorflow/tfjs-backend-wasm",
        "esbuild",
    ):
        assert name in pinned and pinned[name][0].isdigit(), (name, pinned.get(name))
    assert not any(name.startswith("@mediapipe/") for name in pinned)  # one runtime: TF.js
    lock = json.loads((REPO / "package-lock.json").read_text())["packages"]
    for name, version in pinned.items():
        assert lock[f"node_modules/{name}"]["version"] == version, name


# -- what the page is given (facemask.browser) -------------------------------------------------
def _model_with_card(tmp_path: Path, **card) -> Path:
    model = tmp_path / "m"
    model.mkdir()
    base = {"name": "m", "labels": ["with_mask", "without_mask"], "input_size": 128}
    (model / "card.json").write_text(json.dumps({**base, **card}))
    return model


def _tfjs(folder: Path, size: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.json").write_text("{}")
    (folder / "group1-shard1of1.bin").write_bytes(b"\0" * size)
    return folder


def test_browser_export_prefers_the_cards_choice_then_the_smallest(tmp_path) -> None:
    exports = {
        "tfjs": {"dir": "tfjs", "format": "tfjs_graph_model", "bytes": 900},
        "tfjs_float16": {"dir": "tfjs_float16", "format": "tfjs_graph_model", "bytes": 500},
        "tflite": {"file": "model.tflite"},
    }
    model = _model_with_card(tmp_path, exports=exports)
    _tfjs(model / "tfjs", 900)
    assert browser.browser_export(model) == (model / "tfjs").resolve()  # the only one present
    _tfjs(model / "tfjs_float16", 500)
    assert browser.browser_export(model).name == "tfjs_float16"  # the smallest
    card = json.loads((model / "card.json").read_text())
    (model / "card.json").write_text(json.dumps({**card, "serving_browser": {"dir": "tfjs"}}))
    assert browser.browser_export(model).name == "tfjs"  # the card's choice
    assert browser.export_bytes(model / "tfjs") == 902


@pytest.mark.parametrize("bad", ["..", "../other", "/etc", "tfjs/../../x", ""])
def test_browser_export_never_leaves_the_model_folder(tmp_path, bad) -> None:
    _tfjs(tmp_path / "other", 10)
    model = _model_with_card(tmp_path, serving_browser={"dir": bad})
    with pytest.raises(ModelError, match="has no TF.js export"):
        browser.browser_export(model)


def test_component_args_come_from_the_card_the_pipeline_and_the_sidebar(tmp_path) -> None:
    card = json.loads(
        (_model_with_card(tmp_path, thresholds={"with_mask": 0.7}) / "card.json").read_text()
    )
    args = browser.component_args(card, min_score=0.55, min_face=30)
    assert args["labels"] == ["with_mask", "without_mask"] and args["inputSize"] == 128
    assert args["thresholds"] == {"with_mask": 0.7}
    assert args["colors"]["with_mask"] == list(LABEL_COLORS_RGB["with_mask"])
    assert args["labelText"] == {"with_mask": "Mask", "without_mask": "No mask"}
    fields = ("alpha", "hysteresis", "min_iou", "max_missed")
    assert args["tracker"] == {name: getattr(FaceTracker(), name) for name in fields}
    assert args["messages"] == browser.CAMERA_MESSAGES
    assert (args["minScore"], args["minFace"], args["margin"]) == (0.55, 30, CROP_MARGIN)
    json.dumps(args)  # all of it reaches the page as JSON


# -- the page's JavaScript against the Python it ports (node runs the page's own modules) ----
def _node(script: str, payload: dict) -> object:
    if subprocess.run(["node", "--version"], capture_output=True).returncode != 0:
        pytest.skip("node is not installed")
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script, json.dumps(payload)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_js_crops_match_crop_faces(face_images, tmp_path) -> None:
    rgb = load_image(face_images[0])
    height, width = rgb.shape[:2]
    boxes = [
        (150, 60, 290, 200),  # inside, 175 px: shrunk bilinearly (less than 2x)
        (40, 30, 300, 290),  # 325 px: shrunk 2x or more, with INTER_AREA
        (-30, -20, 60, 90),  # past the top-left corner: border replicated
        (width - 50, height - 40, width + 10, height + 5),  # past the bottom-right corner
        (200, 200, 240, 236),  # smaller than the crop: enlarged with INTER_LINEAR
    ]
    expected = crop_faces(rgb, boxes, 128)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    (tmp_path / "frame.rgba").write_bytes(rgba.tobytes())
    script = """
import { readFileSync } from "node:fs";
import { cropFaces } from "./browser_live/frontend/src/crop.js";
const a = JSON.parse(process.argv[1]);
const data = new Uint8Array(readFileSync(a.file));
const out = cropFaces({ data, width: a.width, height: a.height }, a.boxes, 128, a.margin);
process.stdout.write(JSON.stringify(Array.from(out)));
"""
    got = _node(
        script,
        {
            "file": str(tmp_path / "frame.rgba"),
            "width": width,
            "height": height,
            "boxes": boxes,
            "margin": CROP_MARGIN,
        },
    )
    got = np.asarray(got, dtype=np.float32).reshape(expected.shape)
    diff = np.abs(got - expected.astype(np.float32))
    assert diff.max() <= 2 and diff.mean() < 0.3, (diff.max(), diff.mean())


@pytest.mark.parametrize("thresholds", [None, {"with_mask": 0.95}])
def test_js_tracker_matches_face_tracker(thresholds, shipped_model_dir) -> None:
    labels = ("with_mask", "without_mask")
    frames = [  # one face whose probabilities swing, a second that comes and goes
        [((10, 10, 60, 60), 0.9, (0.9, 0.1)), ((100, 10, 150, 60), 0.8, (0.2, 0.8))],
        [((12, 10, 62, 60), 0.9, (0.4, 0.6))],
        [((13, 11, 63, 61), 0.9, (0.3, 0.7)), ((101, 10, 151, 60), 0.7, (0.6, 0.4))],
        [((14, 11, 64, 61), 0.9, (0.1, 0.9))],
        [((300, 300, 340, 340), 0.6, (0.5, 0.5))],
    ]
    # the page's smoothing parameters are what the component is given (facemask.browser)
    params = browser.component_args(read_card(shipped_model_dir), 0.5, 20)["tracker"]
    tracker = FaceTracker(**params)
    expected = []
    for faces in frames:
        detections = [Detection(box, "", 0.0, score, probs) for box, score, probs in faces]
        smoothed = tracker.update(detections, labels, thresholds)
        expected.append([[d.label, round(d.confidence, 5), d.track_id] for d in smoothed])
    script = """
import { FaceTracker } from "./browser_live/frontend/src/tracker.js";
const a = JSON.parse(process.argv[1]);
const tracker = new FaceTracker(a.params, a.labels, a.thresholds);
const out = a.frames.map((faces) =>
  tracker.update(faces.map(([box, score, probabilities]) => ({ box, score, probabilities })))
    .map((d) => [d.label, Math.round(d.confidence * 1e5) / 1e5, d.trackId]));
process.stdout.write(JSON.stringify(out));
"""
    got = _node(
        script,
        {"params": params, "labels": labels, "frames": frames, "thresholds": thresholds or {}},
    )
    assert got == expected
    assert [len(f) for f in got] == [2, 1, 2, 1, 1] and got[3][0][0] == "without_mask"
    if thresholds:  # with_mask needs p >= 0.95: the first face starts without a mask
        assert got[0][0][0] == "without_mask"
    else:
        assert got[0][0][0] == "with_mask"


def test_js_faces_that_stay_put_reuse_a_recent_classification_of_themselves() -> None:
    """reuse.js, driven as the page drives it: frame k+1 is planned before frame k is finished;
    a classifier call answers two frames after it is sent; a still face is refreshed only while
    no call is on its way. Every face's probabilities come from a classification of that same
    face, and a recent one; the page waits for an answer only for a new or moved face; still
    faces cost about one classification each in maxAge frames, not one each frame."""
    scene = {  # face key -> box per frame: B moves at frame 12, D comes at frame 20
        "A": lambda k: [10, 10, 60, 60],
        "B": lambda k: [100, 10, 150, 60] if k < 12 else [125, 20, 175, 70],
        "C": lambda k: [200, 10, 250, 60],
        "D": lambda k: [300, 10, 350, 60] if k >= 20 else None,
    }
    frames = [[(key, box(k)) for key, box in scene.items() if box(k)] for k in range(40)]
    script = """
import { REUSE, RecentClassifications } from "./browser_live/frontend/src/reuse.js";
const { frames, latency } = JSON.parse(process.argv[1]);
const recent = new RecentClassifications();
const calls = []; // {k, plan, rows, done}
const answer = (call) => { RecentClassifications.fill(call.plan, call.rows); call.done = true; };
const used = [];
const classified = [];
const waited = [];
let previous = null;
const finish = ({ k, plan }) => {
  const missing = plan.entries.filter((e) => !RecentClassifications.answer(e));
  if (missing.length) waited.push(k);
  for (const call of calls) {
    if (!call.done && missing.some((e) => call.plan.entries.includes(e))) answer(call);
  }
  used.push(plan.entries.map(RecentClassifications.answer));
};
frames.forEach((faces, k) => {
  const plan = recent.plan(faces.map(([, box]) => box), { refresh: calls.every((c) => c.done) });
  // the classifier's answer for face i of frame k: [k, its key] (what it saw, and when)
  const rows = plan.classify.map((i) => [k, faces[i][0]]);
  if (rows.length) calls.push({ k, plan, rows });
  classified.push(plan.classify.map((i) => faces[i][0]));
  for (const call of calls) if (!call.done && k - call.k >= latency) answer(call);
  if (previous) finish(previous);
  previous = { k, plan };
});
finish(previous);
process.stdout.write(JSON.stringify({ used, classified, waited, maxAge: REUSE.maxAge }));
"""
    latency = 2
    got = _node(script, {"frames": frames, "latency": latency})
    max_age = got["maxAge"]
    for k, (faces, used) in enumerate(zip(frames, got["used"], strict=True)):
        for (key, _), (at, seen) in zip(faces, used, strict=True):
            assert seen == key, (k, key, seen)  # never another face's answer
            assert 0 <= k - at <= 2 * max_age + latency, (k, key, at)
    assert got["classified"][0] == ["A", "B", "C"]
    assert "B" in got["classified"][12] and "D" in got["classified"][20]
    assert got["waited"] == [0, 12, 20]
    assert sum(map(len, got["classified"])) < sum(map(len, frames)) / 4, got["classified"]


def _rgba_file(rgb: np.ndarray, path: Path) -> dict:
    path.write_bytes(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]).tobytes())
    return {"file": str(path), "width": rgb.shape[1], "height": rgb.shape[0]}


def test_js_detector_finds_the_faces_facedetector_finds(face_images, tmp_path) -> None:
    """The page's detector (tflite.js running the package's .tflite on TF.js, faces.js decoding
    it) against FaceDetector.detect with the WEBCAM preset: the same boxes on the same frames."""
    photos = [load_image(path) for path in face_images]
    frames = [*photos, e2e.camera_picture(photos[:3])]
    frames += [np.ascontiguousarray(p[:, 200:]) for p in photos[:2]]  # faces cut by the edge
    frames += [np.ascontiguousarray(p[100:]) for p in photos[:2]]
    options = {"minScore": 0.5, "nmsIou": WEBCAM.nms_iou, "minFace": 20}
    detector = FaceDetector(
        dataclasses.replace(WEBCAM, min_score=options["minScore"], min_face=options["minFace"])
    )
    expected = [detector.detect(rgb) for rgb in frames]
    script = """
import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { createDetector } from "./browser_live/frontend/src/detector.js";
const a = JSON.parse(process.argv[1]);
await tf.setBackend("cpu");
const bytes = new Uint8Array(readFileSync("facemask/assets/face_detection_short_range.tflite"));
const detector = createDetector(tf, bytes.buffer);
const out = a.frames.map((f) => {
  const frame = { data: new Uint8Array(readFileSync(f.file)), width: f.width, height: f.height };
  return detector.detect(frame, a.options);
});
process.stdout.write(JSON.stringify(out));
"""
    files = [_rgba_file(rgb, tmp_path / f"{i}.rgba") for i, rgb in enumerate(frames)]
    got = _node(script, {"frames": files, "options": options})
    assert sum(len(faces) for faces in expected) >= len(frames)  # faces to compare
    assert any(f.box[0] == 0 for f in expected[-4]) and any(f.box[1] == 0 for f in expected[-1])
    for python, js in zip(expected, got, strict=True):
        assert [list(f.box) for f in python] == [f["box"] for f in js]
        assert np.allclose([f.score for f in python], [f["score"] for f in js], atol=0.01)


def test_js_folded_classifier_answers_as_the_export_does(shipped_model_dir) -> None:
    """fuse.js folds the batch norms into the depthwise filters: the same probabilities, fewer
    ops."""
    export = browser.browser_export(shipped_model_dir)
    script = """
import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { loadGraphModel } from "@tensorflow/tfjs-converter";
import { loadFolded } from "./browser_live/frontend/src/fuse.js";
const a = JSON.parse(process.argv[1]);
await tf.setBackend("cpu");
globalThis.fetch = async (url) => {
  const b = readFileSync(new URL(url));
  return { ok: true, status: 200, json: async () => JSON.parse(b),
           arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) };
};
const url = "file://" + a.dir + "/model.json";
const plain = await loadGraphModel(url, { fetchFunc: globalThis.fetch });
const folded = await loadFolded(url);
const x = tf.randomUniform([2, a.size, a.size, 3], 0, 255, "float32", 7);
const ops = (m) => Object.keys(m.executor.graph.nodes).length;
process.stdout.write(JSON.stringify({
  plain: Array.from(plain.predict(x).dataSync()), folded: Array.from(folded.predict(x).dataSync()),
  opsPlain: ops(plain), opsFolded: ops(folded),
}));
"""
    size = read_card(shipped_model_dir)["input_size"]
    got = _node(script, {"dir": str(export), "size": size})
    assert np.allclose(got["plain"], got["folded"], atol=1e-5), got
    assert got["opsFolded"] < got["opsPlain"] - 40, (got["opsPlain"], got["opsFolded"])


_MOCK_CONTEXT = """
import { drawDetections, drawLegend } from "./browser_live/frontend/src/draw.js";
const a = JSON.parse(process.argv[1]);
const calls = [];  // every method called on the context, with the styles set at the time
const ctx = new Proxy({}, {
  get: (target, name) => name in target ? target[name] : (...args) => {
    calls.push({ name, args, style: target.strokeStyle, width: target.lineWidth,
                 fill: target.fillStyle, font: target.font, baseline: target.textBaseline });
    return { width: a.widths?.[args[0]] ?? 10 * String(args[0]).length };  // measureText
  },
  set: (target, name, value) => ((target[name] = value), true),
});
"""
"""A 2D context for draw.js that records its calls; measureText gives the width `a.widths`
lists for a text (else 10 px a character)."""


def test_js_drawing_draws_what_annotate_draws() -> None:
    """The page's draw (draw.js) and pipeline.annotate: the same boxes, colours, line width,
    label texts, and the label band above the box unless there is no room."""
    args = browser.component_args(
        {"labels": ["with_mask", "without_mask"], "input_size": 128}, 0.5, 20
    )
    detections = [
        Detection((100, 120, 220, 260), "with_mask", 0.935, 0.9),
        Detection((300, 2, 420, 150), "without_mask", 0.125, 0.8),  # no room above
        Detection((450, 300, 560, 420), "without_mask", 0.5, 0.7),
    ]
    width, height = 640, 480
    script = (
        _MOCK_CONTEXT
        + """
drawDetections(ctx, a.detections, a.width, a.height, a.args);
process.stdout.write(JSON.stringify(calls));
"""
    )
    payload = [{"box": d.box, "label": d.label, "confidence": d.confidence} for d in detections]
    calls = _node(
        script, {"detections": payload, "width": width, "height": height, "args": args}
    )
    rects = [c for c in calls if c["name"] == "strokeRect"]
    texts = [c["args"][0] for c in calls if c["name"] == "fillText"]
    bands = [c for c in calls if c["name"] == "fillRect"]
    frame = np.zeros((height, width, 3), np.uint8)
    drawn = annotate(frame, detections)
    thickness = max(1, int(round(max(0.45, min(1.2, width / 900)) * 2)))
    for det, rect, text, band in zip(detections, rects, texts, bands, strict=True):
        x1, y1, x2, y2 = det.box
        color = tuple(args["colors"][det.label])
        assert rect["args"] == [x1, y1, x2 - x1, y2 - y1] and rect["width"] == thickness
        assert rect["style"] == "rgb({}, {}, {})".format(*color)
        assert tuple(drawn[(y1 + y2) // 2, x1]) == color  # annotate's box edge, same colour
        assert text == f"{args['labelText'][det.label]} {det.confidence:.0%}"
        above_js = band["args"][1] < y1
        above_python = tuple(drawn[max(y1 - 4, 0), x1 + 2]) == color and y1 > 4
        assert above_js == above_python, det


def _css_rgb(style: str) -> tuple[int, int, int]:
    """A canvas fill style the page sets ("#000", "#fff", "rgb(r, g, b)") as RGB."""
    named = {"#000": (0, 0, 0), "#fff": (255, 255, 255)}
    if style in named:
        return named[style]
    r, g, b = (int(v) for v in style.removeprefix("rgb(").removesuffix(")").split(","))
    return r, g, b


@pytest.mark.parametrize("width,height", [(640, 480), (1280, 720), (320, 240), (200, 150)])
@pytest.mark.parametrize("labels", [["with_mask", "without_mask"], list(THREE_LABELS)])
def test_js_legend_draws_what_annotate_draws(labels, width, height) -> None:
    """draw.js's legend and annotate(..., legend=labels): the same dark band, the same swatches
    in the same colours and places, pixel for pixel, with each label's name beside its swatch
    (measureText answers with OpenCV's widths for the names, so the rows line up exactly)."""
    args = browser.component_args({"labels": labels, "input_size": 128}, 0.5, 20)
    scale = max(0.45, min(1.2, width / 900)) * 0.8
    thickness = max(1, int(round(scale / 0.8 * 2)) - 1)
    names = [args["labelText"][label] for label in labels]
    widths = {
        n: cv2.getTextSize(n, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] for n in names
    }
    script = (
        _MOCK_CONTEXT
        + """
drawLegend(ctx, a.labels, a.width, a.height, a.args);
process.stdout.write(JSON.stringify(calls));
"""
    )
    payload = {"labels": labels, "width": width, "height": height, "args": args}
    calls = _node(script, {**payload, "widths": widths})
    background = (17, 99, 201)  # a colour neither drawing uses
    python = annotate(np.full((height, width, 3), background, np.uint8), [], legend=labels)
    js = np.full_like(python, background)
    for call in (c for c in calls if c["name"] == "fillRect"):
        x, y, w, h = call["args"]
        js[y : y + h, x : x + w] = _css_rgb(call["fill"])
    drawn_js = np.any(js != background, axis=2)
    assert drawn_js[-1, 0] and not drawn_js[: height // 2].any()  # a band along the bottom
    assert np.array_equal(np.any(python != background, axis=2), drawn_js)  # the band
    texts = [c for c in calls if c["name"] == "fillText"]
    assert [c["args"][0] for c in texts] == names
    for label, text in zip(labels, texts, strict=True):
        color = args["colors"][label]
        swatch_python = np.all(python == color, axis=2)
        assert swatch_python.any() and np.array_equal(swatch_python, np.all(js == color, axis=2))
        ys, xs = np.nonzero(swatch_python)
        x, y = text["args"][1:]
        assert x == xs.max() + 4 and ys.min() < y <= ys.max(), (label, x, y)  # name beside it
        assert text["fill"] == "#fff" and text["baseline"] == "alphabetic"
    fonts = {int(c["font"].split("px")[0]) for c in texts}
    assert fonts == {round(26 * scale)}  # as the box labels' 26 px at scale 1, at 0.8 of it


def test_js_camera_errors_get_the_sentences_both_live_pages_share() -> None:
    script = """
import { MESSAGES, cameraMessage } from "./browser_live/frontend/src/messages.js";
const messages = JSON.parse(process.argv[1]);
const names = ["NotAllowedError", "SecurityError", "NotFoundError", "OverconstrainedError",
               "NotReadableError"];
const out = names.map((name) => cameraMessage({ name }, messages));
out.push(MESSAGES.modelFailed("HTTP 404"));
process.stdout.write(JSON.stringify(out));
"""
    sentences = browser.CAMERA_MESSAGES
    refused, security, missing, overconstrained, busy, failed = _node(script, sentences)
    assert refused == security == sentences["refused"]
    assert missing == overconstrained == sentences["noCamera"]
    assert busy == sentences["busy"]
    assert failed.startswith("The models could not be loaded (HTTP 404)")
    # the check that runs before the page's code (no WebAssembly) says the shared sentence
    check = (REPO / "browser_live" / "frontend" / "check.js").read_text()
    assert sentences["noWebAssembly"] in _js_string_in(check)
    # the server-side page hands streamlit-webrtc the same sentences
    live_page = (REPO / "app_pages" / "live.py").read_text()
    for key in ("refused", "noCamera", "insecure"):
        assert f'CAMERA_MESSAGES["{key}"]' in live_page
    for sentence in (*sentences.values(), failed):
        assert sentence.count(". ") == 0 and sentence.endswith(".")  # one sentence each


def _js_string_in(source: str) -> str:
    """The string literal concatenated in a JS source (its pieces joined)."""
    return "".join(piece for i, piece in enumerate(source.split('"')) if i % 2)


# -- the page itself, without a browser (AppTest) ---------------------------------------------
def test_page_serves_the_chosen_models_browser_export_or_says_why_not(
    built_frontend, monkeypatch, tmp_path
) -> None:
    from streamlit.testing.v1 import AppTest

    model = tmp_path / "models" / "mobilenetv2"
    model.mkdir(parents=True)
    for name in ("card.json", "model.tflite"):
        (model / name).write_bytes((SHIPPED_MODEL / name).read_bytes())
    monkeypatch.setenv("FACEMASK_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("FACEMASK_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.switch_page("app_pages/browser.py").run()
    assert not at.exception and at.title[0].value == "Live in your browser"
    [error] = at.error  # the card lists TF.js exports, but none is in the folder
    assert "has no TF.js export, so it cannot run in the browser" in error.value

    export = json.loads((SHIPPED_MODEL / "card.json").read_text())["serving_browser"]["dir"]
    destination = model / export
    destination.mkdir()
    for path in (SHIPPED_MODEL / export).iterdir():
        (destination / path.name).write_bytes(path.read_bytes())
    at.run()
    assert not at.exception and not at.error
    captions = " ".join(c.value for c in at.main.caption)
    assert "the video never leaves your device" in captions
    assert f"MB TF.js download, `{export}/`" in captions
    assert any("server-side Live page" in str(link.proto) for link in at.main.get("page_link"))
