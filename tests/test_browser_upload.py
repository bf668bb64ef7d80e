"""Hostile uploads in a real headless Chromium: the worst fuzz files (each one aborted the
server before the gate) uploaded at once with a good photo. The server keeps answering its
health check, shows one message per bad file, and annotates the good photo."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
import test_browser_e2e as e2e
from hostile_files import worst, write

pytestmark = pytest.mark.browser
app_server = e2e.app_server  # the same fixtures: a real server, a real headless Chromium
launch_browser = e2e.launch_browser
GOOD_PHOTO = "without_mask_00599.jpg"


def _healthy(base: str) -> bool:
    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=10) as response:
        return response.status == 200


def test_worst_uploads_get_one_message_each_and_the_server_stays_up(
    app_server,
    launch_browser,
    face_images: list[Path],
    tmp_path: Path,
) -> None:
    base, _, log_path, server_pid = app_server
    bad = worst()
    assert len(bad) >= 5
    paths = write(bad, tmp_path / "uploads")
    paths.append(next(p for p in face_images if p.name == GOOD_PHOTO))

    page = launch_browser(None)  # no camera: this test never starts the Live stream
    page.goto(base, wait_until="domcontentloaded")
    e2e._open_page(page, "Upload", "Upload photos or a video")
    page.locator('input[type="file"][accept*=".png"]').first.set_input_files(paths)

    errors = page.locator('[data-testid="stAlertContentError"]')
    e2e._wait_for(f"{len(bad)} error messages", lambda: errors.count() >= len(bad), timeout=240)
    page.locator('[data-testid="stImage"] img').first.wait_for(timeout=120_000)
    page.get_by_text(re.compile(r"\d+ face\(s\) in 1 image\(s\)")).wait_for(timeout=60_000)
    e2e._wait_until_idle(page)

    assert _healthy(base)
    texts = [errors.nth(i).inner_text().strip() for i in range(errors.count())]
    assert len(texts) == len(bad), texts
    for f, text in zip(bad, texts, strict=True):
        assert text.startswith(f.name + " ") and text.endswith(".") and "\n" not in text, text
    assert page.locator('[data-testid="stImage"] img').count() == 1  # the good photo
    assert page.get_by_role("heading", name=GOOD_PHOTO).count() == 1
    e2e._no_exceptions(page, "Upload")
    e2e._screenshot(page, "upload-hostile")
    assert "Aborted" not in log_path.read_text(errors="replace")
