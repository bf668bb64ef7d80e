"""Classifier latency per face crop: TFLite float vs full-integer int8 (ai-edge-litert, 1 and 2
threads) side by side with the baseline, Keras model.predict on one crop; file sizes, agreement
with Keras on real face crops, and peak RSS of each runtime in its own process.

    .venv/bin/python bench/classifier_latency.py [--sizes 128 160 224] [--runs 200]

Model: MobileNetV2 alpha 1.0 with ImageNet weights (../shared/weights) and a 2-way head fit on
the frozen features of half the crops (the head does not change the cost; it makes "agree %",
int8 vs Keras labels on the other half, mean something). TFLite is timed through
MaskClassifier.predict (the path the app serves). Every runtime runs in a fresh subprocess, so
its peak RSS (VmHWM, else resource.getrusage) is its own; timings run --repeat times,
interleaved, keeping the lowest median. Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from facemask import LABELS as DEFAULT_LABELS  # noqa: E402
from facemask.files import CARD_FILE  # noqa: E402

SHARED = REPO.parent / "shared"
WEIGHTS = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
DATASET = SHARED / "datasets" / "chandrikadeb7-face-mask"
LABELS = list(DEFAULT_LABELS)


def peak_rss_mb() -> float:
    """This process's peak RSS. Linux carries ru_maxrss across fork+exec (a worker spawned by
    a 3 GB parent reports 3 GB), so VmHWM, which exec resets, comes first."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(args: argparse.Namespace) -> None:
    """Time one runtime on one crop at a time; print JSON {median_ms, p90_ms, rss_mb}."""
    crops = np.load(args.crops_file)
    if args.worker == "keras":
        from facemask.classify import load_keras_model

        model = load_keras_model(args.model)
        predict = lambda crop: model.predict(crop[None].astype(np.float32), verbose=0)  # noqa: E731
    else:
        from facemask.classify import MaskClassifier

        classifier = MaskClassifier(
            Path(args.model).parent, "tflite", args.threads, tflite_file=Path(args.model).name
        )
        predict = classifier.predict
    for crop in crops[:5]:  # warm-up: graph tracing, XNNPACK weight packing
        predict(crop)
    times, cpu = [], []
    for i in range(args.runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        predict(crops[i % len(crops)])
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    times.sort()
    result = {
        "median_ms": statistics.median(times),
        "p90_ms": times[int(0.9 * (len(times) - 1))],
        "cpu_ms": statistics.median(cpu),
        "rss_mb": peak_rss_mb(),
    }
    print(json.dumps(result))


def run_worker(kind: str, model: Path, crops: Path, runs: int, threads: int = 1) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--model", str(model)]
    command += ["--crops-file", str(crops), "--runs", str(runs), "--threads", str(threads)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def face_crops(size: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole-photo square crops of `count` real face photos per class, evenly spread, and
    their labels."""
    from facemask.images import load_image
    from facemask.pipeline import crop_faces

    crops, labels = [], []
    for index, label in enumerate(LABELS):
        photos = sorted((DATASET / label).glob("*.jpg"))
        for path in photos[:: max(1, len(photos) // count)][:count]:
            rgb = load_image(path)
            height, width = rgb.shape[:2]
            crops.append(crop_faces(rgb, [(0, 0, width, height)], size, margin=0.0)[0])
            labels.append(index)
    return np.stack(crops), np.asarray(labels)


def fit_head(model, crops: np.ndarray, labels: np.ndarray) -> None:
    """Train only the 2-way head on the frozen ImageNet features, so that agreement is
    measured on a classifier whose outputs mean something (as after training)."""
    import keras

    features = keras.Model(model.inputs, model.get_layer("pool").output)
    x = features.predict(crops.astype(np.float32), batch_size=32, verbose=0)
    head = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Dense(len(LABELS))])
    head.layers[-1].set_weights(model.get_layer("probabilities").get_weights())
    head.compile(
        keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    head.fit(x, labels, epochs=60, batch_size=32, verbose=0)
    model.get_layer("probabilities").set_weights(head.layers[-1].get_weights())


def bench_size(size: int, args: argparse.Namespace, folder: Path) -> list[dict]:
    import keras

    from facemask.convert import export_tflite
    from facemask.models import build_classifier
    from facemask.verify import keras_probabilities, run_tflite, verify_tflite

    keras.utils.set_random_seed(0)
    model, _ = build_classifier("mobilenetv2", size, len(LABELS), weights=str(WEIGHTS))
    all_crops, all_labels = face_crops(size, args.crops)  # `crops` per class: half fit, half check
    fit, held = slice(0, None, 2), slice(1, None, 2)
    fit_head(model, all_crops[fit], all_labels[fit])
    crops, labels = all_crops[held], all_labels[held]
    accuracy = float(np.mean(keras_probabilities(model, crops).argmax(1) == labels)) * 100
    crops_file = folder / f"crops{size}.npy"
    np.save(crops_file, crops)
    keras_file = folder / f"model{size}.keras"
    model.save(keras_file)
    (folder / CARD_FILE).write_text(json.dumps({"labels": LABELS, "input_size": size}))

    paths = {}
    for variant, quantize in (("tflite float", False), ("tflite int8", True)):
        paths[variant] = folder / f"model{size}_{'int8' if quantize else 'float'}.tflite"
        calibration = all_crops[fit] if quantize else None
        export_tflite(model, paths[variant], calibration, quantize=quantize)

    # The CPU is shared: run every timing `repeat` times, interleaved, and keep the least
    # disturbed (lowest) median of each.
    best: dict[tuple[str, int], dict] = {}
    for _ in range(args.repeat):
        jobs = [("keras predict (baseline)", "keras", keras_file, 1, args.keras_runs)]
        jobs += [(v, "tflite", p, t, args.runs) for v, p in paths.items() for t in (1, 2)]
        for variant, kind, path, threads, runs in jobs:
            result = run_worker(kind, path, crops_file, runs, threads)
            key = (variant, threads)
            if key not in best or result["median_ms"] < best[key]["median_ms"]:
                best[key] = {
                    **result,
                    "rss_mb": max(result["rss_mb"], best.get(key, result)["rss_mb"]),
                    "cpu_ms": min(result["cpu_ms"], best.get(key, result)["cpu_ms"]),
                }

    base = best[("keras predict (baseline)", 1)]
    rows = [
        {"size": size, "variant": "keras predict (baseline)", "bytes": keras_file.stat().st_size,
         "ms1": base["median_ms"], "ms2": None, "cpu1": base["cpu_ms"], "rss": base["rss_mb"],
         "agree": None,
         "diff": None, "acc": accuracy, "n": len(crops)},
    ]  # fmt: skip
    for variant, path in paths.items():
        check = verify_tflite(model, path, crops, LABELS, num_threads=1)
        probs, _ = run_tflite(path, crops, num_threads=1)
        one, two = best[(variant, 1)], best[(variant, 2)]
        rows.append(
            {"size": size, "variant": variant, "bytes": path.stat().st_size,
             "ms1": one["median_ms"], "ms2": two["median_ms"], "cpu1": one["cpu_ms"],
             "rss": max(one["rss_mb"], two["rss_mb"]), "agree": check["agreement"],
             "diff": check["max_abs_diff"], "acc": float(np.mean(probs.argmax(1) == labels)) * 100,
             "n": len(crops)}
        )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 160, 224])
    parser.add_argument("--runs", type=int, default=200, help="timed TFLite calls (default 200)")
    parser.add_argument("--keras-runs", type=int, default=30, help="timed Keras calls (30)")
    parser.add_argument("--crops", type=int, default=200, help="face photos per class (200)")
    parser.add_argument("--repeat", type=int, default=3, help="timing rounds, best kept (3)")
    parser.add_argument("--worker", choices=["keras", "tflite"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--crops-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if not WEIGHTS.is_file() or not DATASET.is_dir():
        raise SystemExit(f"needs {WEIGHTS} and {DATASET}")

    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="facemask-bench-") as tmp:
        for size in args.sizes:
            rows += bench_size(size, args, Path(tmp))

    def cell(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    print(
        f"{'px':>4} {'runtime':<26} {'file MB':>8} {'ms 1 thr':>9} {'ms 2 thr':>9} {'cpu ms 1':>9} "
        f"{'x baseline':>10} {'agree %':>8} {'max diff':>9} {'acc %':>6} {'peak RSS MB':>12}"
    )
    baseline: dict[int, float] = {}
    for row in rows:
        baseline.setdefault(row["size"], row["ms1"])
        best = min(x for x in (row["ms1"], row["ms2"]) if x is not None)
        print(
            f"{row['size']:>4} {row['variant']:<26} {row['bytes'] / 1e6:>8.2f} "
            f"{cell(row['ms1'], '.2f'):>9} {cell(row['ms2'], '.2f'):>9} {row['cpu1']:>9.2f} "
            f"{baseline[row['size']] / best:>9.1f}x {cell(row['agree'], '.1f'):>8} "
            f"{cell(row['diff'], '.4f'):>9} {row['acc']:>6.1f} {row['rss']:>12.0f}"
        )
    print(
        "ms: wall-clock median per crop; cpu ms 1: its process CPU time at 1 thread (what the "
        "crop costs whatever the machine's load; Keras uses several threads, so more)"
    )
    print(
        f"agree % / max diff: labels and probabilities vs Keras; acc %: vs the true labels; on "
        f"{rows[0]['n']} held-out crops (head fit on as many others, int8 calibrated on those)"
    )
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"main process peak RSS (conversion): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
