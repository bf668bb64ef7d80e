"""Safe on a network, in a real headless Chromium (docs/security.md).

- The app listens on every interface (0.0.0.0) with an operator password: visitor B, in its own
  browser, sees a training running and a stopped run but no Cancel, Resume or Discard, and a
  wrong password is counted; operator A signs in and cancels the training and discards the run.
- Reachable from a network with no sign-in configured (here: FACEMASK_REQUIRE_SIGN_IN, as behind
  a reverse proxy): nobody is the operator and the page says so; a run whose records hold bad
  bytes leaves every Training tab working; a session's photos are limited; a video job ends, and
  its temporary folder goes, when its visitor closes the tab; a second video is told "busy".
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import test_browser_e2e as e2e
from test_video_limits import flat_clip

from facemask import events

pytestmark = pytest.mark.browser
launch_browser = e2e.launch_browser
PASSWORD = "correct horse battery staple"
RUNNING, STOPPED = "20260101-000000-mobilenetv2", "20250101-000000-mobilenetv2"
TRAIN_TAB_TEXT = "Only the operator may do this"


def stand_in_trainer(run_id: str) -> subprocess.Popen:
    """A real process standing in for a training (the page only signals it); its command line
    is `... facemask train --run-id RUN_ID`, as the run store requires of a pid it trusts."""
    sleep = [sys.executable, "-c", "import time; time.sleep(300)"]
    return subprocess.Popen([*sleep, "facemask", "train", "--run-id", run_id])


def partial_run(runs: Path, run_id: str, pid: int | None) -> Path:
    run_dir = runs / ".partial" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"backbone": "mobilenetv2", "data": "mini"}))
    log = events.EventLog(run_dir)
    log.emit(events.Stage("crops", "Finding and cropping faces (cached)"))
    log.emit(events.EpochBegin("head", 1, 6))
    if pid is None:
        log.emit(events.Cancelled("Stopped; resume it to continue from the last epoch."))
    else:
        (run_dir / "train.pid").write_text(str(pid))
    return run_dir


def open_training(page, base: str) -> None:
    page.goto(base, wait_until="domcontentloaded")
    e2e._open_page(page, "Training", "Training and comparison")
    no_error(page)


def no_error(page) -> None:
    """Neither a traceback nor the page boundary's sentence for an unexpected error."""
    e2e._no_exceptions(page, "Training")
    assert page.get_by_text("Something went wrong").count() == 0


def buttons(page, name: str) -> int:
    return page.get_by_role("button", name=name, exact=True).count()


def test_a_visitor_cannot_touch_trainings_and_the_operator_can(
    tmp_path: Path, launch_browser
) -> None:
    trainer = stand_in_trainer(RUNNING)
    runs = tmp_path / "app" / "runs"
    running = partial_run(runs, RUNNING, trainer.pid)
    stopped = partial_run(runs, STOPPED, None)
    env = {"FACEMASK_OPERATOR_PASSWORD": PASSWORD}
    try:
        with e2e.start_app(tmp_path / "app", e2e.SHIPPED_MODEL, "0.0.0.0", **env) as app:
            visitor = launch_browser(None)
            open_training(visitor, app.base)
            visitor.get_by_text(f"Training {RUNNING}").wait_for()
            visitor.get_by_text(STOPPED).first.wait_for()
            assert visitor.get_by_text(TRAIN_TAB_TEXT).count() >= 1
            for name in ("Cancel the training", "Resume", "Discard", "Start training"):
                assert buttons(visitor, name) == 0, name
            sidebar = visitor.locator('[data-testid="stSidebar"]')
            sidebar.get_by_label("Operator password").fill("guess")
            sidebar.get_by_role("button", name="Sign in").click()
            sidebar.get_by_text("Wrong password (4 tries left in this session).").wait_for()
            e2e._wait_until_idle(visitor)
            no_error(visitor)
            assert buttons(visitor, "Cancel the training") == 0
            e2e._screenshot(visitor, "training-visitor")

            operator = launch_browser(None)  # another browser: its own session
            open_training(operator, app.base)
            assert buttons(operator, "Cancel the training") == 0
            sidebar = operator.locator('[data-testid="stSidebar"]')
            sidebar.get_by_label("Operator password").fill(PASSWORD)
            sidebar.get_by_role("button", name="Sign in").click()
            sidebar.get_by_text("Signed in as the operator.").wait_for()
            operator.get_by_role("button", name="Cancel the training").click()
            e2e._wait_for("the training to get SIGTERM", lambda: trainer.poll() is not None, 30)
            assert trainer.returncode == -15
            assert running.exists()  # cancelled, not discarded: resumable
            discard = operator.get_by_role("button", name="Discard", exact=True)
            e2e._wait_for("two Discard buttons", lambda: discard.count() == 2, 30)
            operator.locator(f".st-key-discard_{STOPPED} button").click()  # the widget's key
            e2e._wait_for("the stopped run to go", lambda: not stopped.exists(), 30)
            assert running.exists()
            e2e._wait_until_idle(operator)
            no_error(operator)

            visitor.reload()  # B is still no operator after A signed in
            e2e._open_page(visitor, "Training", "Training and comparison")
            assert buttons(visitor, "Discard") == buttons(visitor, "Resume") == 0
    finally:
        trainer.kill()
        trainer.wait()


def start_video(page, base: str, clip: Path) -> None:
    page.goto(base, wait_until="domcontentloaded")
    e2e._open_page(page, "Upload", "Upload photos or a video")
    page.get_by_role("tab", name="Video").click()
    page.locator('input[type="file"][accept*=".mp4"]').set_input_files(clip)
    page.get_by_role("button", name="Annotate the video").click()


def test_read_only_without_sign_in_bad_records_and_bounded_work(
    tmp_path: Path, launch_browser, face_images: list[Path], shipped_model_dir: Path
) -> None:
    runs = tmp_path / "app" / "runs"
    for name in ("bytes", "not-object"):
        run_dir = runs / ".partial" / name
        run_dir.mkdir(parents=True)
        good = json.dumps({"time": 1.0, "type": "stage", "stage": "data", "message": "Checking"})
        bad = b"\xff\xfe\xfa\n" if name == "bytes" else b'[1, 2]\n"text"\n'
        (run_dir / "events.jsonl").write_bytes(bad + good.encode() + b"\n")
    temp = tmp_path / "server-tmp"
    temp.mkdir()
    (temp / "facemask-video-999999999-left").mkdir()  # left by a crashed server
    env = {
        "FACEMASK_REQUIRE_SIGN_IN": "1",
        "FACEMASK_OPERATOR_PASSWORD": "",
        "FACEMASK_UPLOAD_MAX_FILES": "2",
        "FACEMASK_VIDEO_JOBS": "1",
        "TMPDIR": str(temp),
    }
    with e2e.start_app(tmp_path / "app", e2e.SHIPPED_MODEL, **env) as app:
        page = launch_browser(None)
        open_training(page, app.base)
        closed = "no sign-in is configured: nobody may start, cancel, resume or discard"
        assert page.get_by_text(closed).count() >= 1
        assert buttons(page, "Start training") == buttons(page, "Discard") == 0
        assert page.get_by_label("Operator password").count() == 0
        for name in ("`bytes`", "`not-object`"):
            page.get_by_text(name.strip("`"), exact=True).first.wait_for()
        for tab in ("Curves", "Compare models", "Export"):
            page.get_by_role("tab", name=tab).click()
            e2e._wait_until_idle(page)
        assert page.get_by_text("Something went wrong").count() == 0
        e2e._no_exceptions(page, "Training")

        e2e._open_page(page, "Upload", "Upload photos or a video")
        photos = [p for p in face_images if p.suffix == ".jpg"][:3]
        page.locator('input[type="file"][accept*=".png"]').first.set_input_files(photos)
        page.get_by_text("Only the first 2 of 3 photos were analysed").wait_for(timeout=120_000)
        e2e._wait_until_idle(page)
        assert page.locator('[data-testid="stImage"] img').count() == 2

        assert not (temp / "facemask-video-999999999-left").exists()  # cleaned at start-up
        clip = flat_clip(tmp_path / "long.mp4", frames=1500, rate=25, size=(640, 480))
        first = launch_browser(None)
        start_video(first, app.base, clip)
        first.get_by_text("Frame ").first.wait_for(timeout=120_000)
        folders = list(temp.glob("facemask-video-*"))
        assert len(folders) == 1
        second = launch_browser(None)
        start_video(second, app.base, clip)
        second.get_by_text("try again in a minute").wait_for(timeout=60_000)
        first.context.close()  # the visitor closes the tab mid-job
        closed_at = time.monotonic()
        e2e._wait_for("the job's folder to go", lambda: not folders[0].exists(), 60)
        assert time.monotonic() - closed_at < 30
