"""The `facemask` command, run as users run it."""

import io
import json
import re
import subprocess
import sys
import time

import pytest

from facemask.cli import _model_arg, build_parser


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "facemask", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "export", "video"])
def test_every_command_has_useful_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: facemask " + command in out and "default" in out


def test_predict_json_lines_follow_the_contract(tiny_model_dir, face_images, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    files = [str(p) for p in face_images[:2]]
    result = run(
        "predict", *files, str(bad), "--json", "--whole-image", "--model", str(tiny_model_dir)
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [obj["file"] for obj in lines] == [*files, str(bad)]
    for obj in lines[:2]:
        assert set(obj) == {"file", "width", "height", "faces", "image_label", "image_confidence"}
        assert obj["image_label"] in ("with_mask", "without_mask")
        for face in obj["faces"]:
            assert set(face) == {"box", "label", "confidence", "detection_score"}
            x1, y1, x2, y2 = face["box"]
            assert 0 <= x1 < x2 <= obj["width"] and 0 <= y1 < y2 <= obj["height"]
    assert sum(len(obj["faces"]) for obj in lines[:2]) >= 1
    assert "not a readable image" in lines[2]["error"]
    assert "Traceback" not in result.stderr


def test_unknown_model_is_one_clear_line():
    result = run("predict", "x.jpg", "--model", "../etc")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("facemask:") and "Traceback" not in result.stderr


def test_evaluate_prints_metrics_and_writes_json(tiny_model_dir, mini_dataset, tmp_path):
    out = tmp_path / "metrics.json"
    result = run(
        "evaluate",
        str(tiny_model_dir),
        "--data",
        str(mini_dataset),
        "--small-faces",
        "--output",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and "confusion" in result.stdout
    metrics = json.loads(out.read_text())
    assert metrics["all"]["n"] == 48 and sum(map(sum, metrics["all"]["confusion"])) == 48
    assert "accuracy_by_side_px" in metrics["small_faces"]


def test_the_command_is_quiet_unless_verbose(face_images):
    """TensorFlow, LiteRT, mediapipe and CUDA stubs log from C++; none of it reaches stderr."""
    photo = str(face_images[0])
    quiet = run("predict", photo)
    assert quiet.returncode == 0 and quiet.stdout.startswith(f"{photo}: ")
    assert quiet.stderr == ""
    verbose = run("predict", photo, "--verbose")
    assert verbose.stdout == quiet.stdout and verbose.stderr  # the libraries do talk
    missing = run("predict", "no-such-photo.jpg")  # the command's own messages still show
    assert missing.returncode == 1
    assert (
        missing.stderr == "error: no-such-photo.jpg could not be read: No such file or directory.\n"
    )


def test_every_command_names_its_model_the_same_way():
    parser = build_parser()
    for argv in (
        ["predict", "a.jpg"],
        ["video", "in.mp4", "out.mp4"],
        ["evaluate", "--data", "d"],
        ["export"],
    ):
        args = parser.parse_args([*argv, "--model", "runs/20260101-000000-vgg16"])
        assert _model_arg(args) == "runs/20260101-000000-vgg16", argv
    positional = parser.parse_args(["export", "mobilenetv2"])  # the short form stays
    assert _model_arg(positional) == "mobilenetv2"
    result = run("export", "vgg16", "--model", "mobilenetv2")
    assert result.returncode == 2 and "Two models given" in result.stderr


def test_evaluate_scenes_reports_the_classifier_alone_and_as_detected(tiny_model_dir, face_scenes):
    out = run("evaluate", str(tiny_model_dir), "--scenes", str(face_scenes))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    faces = result["images"]  # one annotated face per photo
    alone = result["classifier_on_annotated_faces"]
    found = result["classifier_on_detected_faces"]
    assert alone["n"] == faces and alone["bare_faces"] + sum(alone["confusion"][0]) == faces
    assert 0 < found["n"] <= result["detection"]["true_positives"]
    assert found["left_out"]["not found by the detector"] == faces - found["n"]
    for figures in (alone, found):
        assert 0.0 <= figures["masked_recall"] <= 1.0
        assert 0 <= figures["bare_called_masked"] <= figures["bare_faces"]
    assert 0.0 <= result["classification"]["mean_ap"] <= 1.0


def test_video_progress_in_a_log_is_a_line_every_few_seconds(tiny_model_dir, face_images, tmp_path):
    """Written to a pipe (CI, a service log), progress is a plain line at most every
    LOG_INTERVAL_S, not a bar redrawn for every frame."""
    from test_video import write_clip

    from facemask.images import load_image
    from facemask.progress import LOG_INTERVAL_S

    face = load_image(next(p for p in face_images if p.name == "astronaut.jpg"))
    clip = write_clip(tmp_path / "clip.mp4", face, size=(320, 240), frames=100)  # 10 s
    started = time.monotonic()
    out = run("video", str(clip), str(tmp_path / "out.mp4"), "--model", str(tiny_model_dir))
    seconds = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    lines = [line for line in re.split(r"[\r\n]", out.stderr) if line.startswith("clip.mp4")]
    assert "\r" not in out.stderr
    assert 1 <= len(lines) <= seconds / LOG_INTERVAL_S + 2, lines
    assert lines[-1] == "clip.mp4: 100/100 frames (100%)"


def test_progress_outside_a_terminal_waits_between_lines():
    from facemask.progress import ProgressReport

    now = [0.0]
    stream = io.StringIO()  # not a terminal
    with ProgressReport("clip.mp4", "frame", stream, interval_s=5.0, clock=lambda: now[0]) as p:
        for frame in range(1, 151):  # 150 frames over 10 s
            now[0] = frame / 15
            p(frame, 150)
    assert stream.getvalue().splitlines() == [
        "clip.mp4: 1/150 frames (1%)",
        "clip.mp4: 76/150 frames (51%)",  # 5 s after the first
        "clip.mp4: 150/150 frames (100%)",
    ]
