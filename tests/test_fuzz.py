"""Fuzzing the gate: over a thousand hostile files through `facemask predict --json` in ONE
process, and through the Upload page's code path in this one. Every file gets a result or one
sentence; the process ends without a signal, within a time bound, under a memory bound.

Run alone: `python -m pytest -q -s tests/test_fuzz.py` (prints the figures of docs/measurements.md).
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hostile_files import Hostile, generate, write

REPO = Path(__file__).resolve().parents[1]
PER_FILE_S = 0.5
"""Generous bound per file (most take a few ms): a hang fails the test instead of stalling it."""
STARTUP_S = 120.0
"""TensorFlow, mediapipe and the model load once; on a busy 2-core machine this takes a while."""
PEAK_RSS_MB = 3000
"""The predict process's peak resident memory: TF + mediapipe + one 36-megapixel image decoded
and drawn stay well under this; a decompression bomb getting through would not."""
FILES = generate(seed=0)
SENTINEL = REPO / "tests" / "data" / "faces" / "astronaut.jpg"
"""A real photo after every hostile file: the process must still be there to find its face."""


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write(FILES, tmp_path_factory.mktemp("fuzz"))


def assert_one_sentence(message: str, name: str) -> None:
    assert message.endswith("."), message
    assert "\n" not in message and "Traceback" not in message, message
    assert len(message) < 300, message
    assert name in message, message


def check_outcome(f: Hostile, error: str | None) -> str:
    """The outcome class of one file; fails when it breaks the file's expectation."""
    if error is None:
        assert f.expect != "error", f"{f.name} ({f.kind}) should have been refused"
        return "result"
    assert f.expect != "result", f"{f.name} ({f.kind}) should work: {error}"
    assert_one_sentence(error, f.name)
    return "error"


def _run_measured(command: list[str], out: Path, timeout: float) -> tuple[int, float, float]:
    """Run a child with stdout to a file; (wait status, wall s, its own peak RSS in MB).

    os.wait4 reads the rusage of this one child (RUSAGE_CHILDREN would fold in other tests).
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.monotonic()
    with out.open("wb") as stdout:
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=stdout, stderr=subprocess.DEVNULL
        )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
        proc.returncode = 0  # reaped by wait4 above
    return status, time.monotonic() - start, usage.ru_maxrss / 1024


def test_predict_survives_every_hostile_file(fuzz_dir, shipped_model_dir, tmp_path) -> None:
    assert len(FILES) >= 1000
    files = [str(p) for p in fuzz_dir] + [str(SENTINEL)]
    timeout = STARTUP_S + PER_FILE_S * len(files)
    command = [sys.executable, "-m", "facemask", "predict", *files, "--json",
               "--model", str(shipped_model_dir)]  # fmt: skip
    status, wall, peak_mb = _run_measured(command, tmp_path / "out.jsonl", timeout)

    assert not os.WIFSIGNALED(status), (
        f"predict died of {signal.Signals(os.WTERMSIG(status)).name} after {wall:.0f} s "
        f"(limit {timeout:.0f} s)"
    )
    assert os.WEXITSTATUS(status) == 0
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [obj["file"] for obj in lines] == files
    outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
    for f, obj in zip(FILES, lines, strict=False):
        outcome = check_outcome(f, obj.get("error"))
        if outcome == "result":
            assert set(obj) == {"file", "width", "height", "faces"}
            for face in obj["faces"]:
                x1, y1, x2, y2 = face["box"]
                assert 0 <= x1 < x2 <= obj["width"] and 0 <= y1 < y2 <= obj["height"]
        outcomes[f.kind, outcome] += 1
    assert len(lines[-1]["faces"]) >= 1  # the sentinel photo, after every hostile file
    assert peak_mb < PEAK_RSS_MB, f"peak RSS {peak_mb:.0f} MB"
    print(
        f"\nfuzz via predict: {len(FILES)} files in {wall:.1f} s, peak RSS {peak_mb:.0f} MB, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for (kind, outcome), n in sorted(outcomes.items()):
        print(f"  {kind:16s} {outcome:7s} {n}")


def test_upload_code_path_survives_every_hostile_file(shipped_model_dir) -> None:
    from facemask.classify import MaskClassifier
    from facemask.detect import PHOTO, FaceDetector
    from facemask.pipeline import Pipeline
    from facemask.uploads import analyse_image

    pipeline = Pipeline(FaceDetector(PHOTO), MaskClassifier(shipped_model_dir))
    outcomes: collections.Counter[str] = collections.Counter()
    start = time.monotonic()
    for f in FILES:
        began = time.monotonic()
        outcome = analyse_image(f.data, f.name, pipeline)
        assert time.monotonic() - began < 60, f"{f.name} took too long"
        assert (outcome.result is None) != (outcome.error is None)
        error = None if outcome.error is None else str(outcome.error)
        outcomes[check_outcome(f, error)] += 1
        if outcome.error is None:
            assert outcome.preview.startswith(b"\xff\xd8") and len(outcome.rows) == len(
                outcome.result["faces"]
            )
    print(f"\nfuzz via the Upload page's analyse_image: {dict(outcomes)} in "
          f"{time.monotonic() - start:.1f} s")  # fmt: skip
    assert outcomes["result"] >= sum(f.expect == "result" for f in FILES)
