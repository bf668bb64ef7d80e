"""Two-phase transfer learning: a new head on a frozen ImageNet base, then fine-tuning of the
top of the base at a lower rate. The whole story of one run, from dataset folder to a finished,
exported run directory, is `train()`."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import keras
import numpy as np

from facemask import BARE, history
from facemask.card import build_card
from facemask.config import TrainConfig
from facemask.data import (
    check_splits,
    describe_data,
    extract_crops,
    resize_crops,
    scan_dataset,
    split_dataset,
    unmeasured_reason,
)
from facemask.detect import TRAINING, FaceDetector
from facemask.errors import RunError
from facemask.evaluate import (
    SMALL_FACE_SIZES,
    classification_metrics,
    degrade,
    small_face_metrics,
)
from facemask.events import (
    Batch,
    Cancelled,
    Done,
    Epoch,
    EpochBegin,
    Error,
    EventLog,
    Stage,
    StageProgress,
)
from facemask.export import export_and_record
from facemask.files import (
    BEST_FILE,
    CARD_FILE,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    DATA_REPORT_FILE,
    KERAS_FILE,
    METRICS_FILE,
    PID_FILE,
    STATE_FILE,
    atomic_path,
    portable_path,
    read_json,
    write_json,
)
from facemask.models import build_classifier, unfreeze_top
from facemask.runs import NOT_SERVABLE, RunStore

HARD_COPIES = 2
"""Extra copies of each hard negative in the fine-tuning data."""


class TrainingCancelled(Exception):
    """Raised inside training when SIGTERM / Ctrl-C asks it to stop."""


class _StopRequests:
    """SIGTERM / Ctrl-C stop training at once, except inside `protect()`: there the stop
    waits until the block ends, so a checkpoint and the state that names it are never torn."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending: str | None = None

    def handler(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.depth:
            self.pending = name
            return
        raise TrainingCancelled(name)

    @contextmanager
    def protect(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if not self.depth and self.pending:
            raise TrainingCancelled(self.pending)


def _save_weights(model, path: Path) -> None:
    """Write weights atomically: a crash or kill mid-write leaves the previous file intact."""
    with atomic_path(path) as tmp:  # keeps the .weights.h5 ending Keras needs
        model.save_weights(tmp)


def train(
    config: TrainConfig,
    store: RunStore,
    run_id: str | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Train, evaluate, export and publish one run; returns the finished run directory.

    A run that is cancelled (SIGTERM, Ctrl-C) or killed stays in runs/.partial/<id>: a cancel
    stops at once, and the checkpoint of its last finished epoch, written when that epoch ended,
    is kept; resume=True continues from it.
    """
    run_id = run_id or store.new_id(config.backbone)
    if resume:
        run_dir = store.partial_dir(run_id)
        saved = read_json(run_dir / CONFIG_FILE)
        if not isinstance(saved, dict):
            raise RunError(f"Run {run_id} has nothing to resume: no config.json in {run_dir}.")
        config = TrainConfig(**{**saved, "command": f"{saved.get('command')}  # resumed"})
        store.claim(run_id)
    else:
        run_dir = store.create(run_id)
        write_json(run_dir / CONFIG_FILE, asdict(config))
    events = EventLog(run_dir)
    stops = _StopRequests()
    previous = {sig: signal.signal(sig, stops.handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    started = time.time()
    try:
        keras.utils.set_random_seed(config.seed)
        dataset = Path(config.data).name
        events.emit(Stage("data", f"Checking the images in {dataset}"))
        log(f"run {run_id}: checking the images in {config.data}")
        scan = scan_dataset(
            config.data,
            config.labels,
            progress=lambda d, t: events.emit(StageProgress("data", d, t)),
            limit_per_class=config.limit_per_class,
        )
        labels = list(scan.labels)
        log(f"  {scan.summary()}")
        for path, reason in scan.skipped[:20]:
            log(f"  skipped {path}: {reason}")
        splits = split_dataset(scan, seed=config.seed)
        check_splits(scan, splits)
        events.emit(Stage("crops", "Finding and cropping faces (cached)"))
        log("  finding faces with the training detector and cropping them (cached)")
        detector = FaceDetector(TRAINING)
        crops = extract_crops(
            scan.items,
            detector,
            config.crop_margin,
            progress=lambda d, t: events.emit(StageProgress("crops", d, t)),
        )
        data_report = describe_data(scan, splits, crops)
        write_json(run_dir / DATA_REPORT_FILE, data_report)
        log(f"  {data_report['summary']}")
        size = config.input_size
        x = {name: resize_crops(crops.crops[idx], size) for name, idx in splits.items()}
        y = {name: crops.labels[idx] for name, idx in splits.items()}

        model, base = build_classifier(config.backbone, size, len(labels), config.weights)
        state = read_json(run_dir / STATE_FILE, {}) if resume else {}
        bare = labels.index(BARE) if BARE in labels else None  # the bare-face hard cases
        fit = _Fitter(config, run_dir, events, log, x, y, state, stops, bare)
        fit.phase(model, "head", config.epochs_head, config.lr_head)
        if config.epochs_fine and config.fine_tune_layers:
            if config.hard_negatives and bare is not None:
                fit.add_hard_negatives(model, bare)
            if config.weights != "none":  # from scratch, the whole base trains from the start
                unfrozen = unfreeze_top(base, config.fine_tune_layers)
                log(f"  fine-tuning: {unfrozen} layers of the base unfrozen")
            fit.phase(model, "fine", config.epochs_fine, config.lr_fine)
        if (run_dir / BEST_FILE).is_file():
            model.load_weights(run_dir / BEST_FILE)  # the epoch with the lowest val_loss

        events.emit(Stage("evaluate", "Evaluating on the held-out test split"))
        metrics = _evaluate(model, x, y, labels)
        write_json(run_dir / METRICS_FILE, metrics)
        log(_metrics_line(metrics))
        model.optimizer = None  # the served model carries no optimizer state (Adam would triple it)
        model.save(run_dir / KERAS_FILE)
        wall_time_s = round(time.time() - started, 1)
        card = build_card(
            config, run_id, run_dir, model, labels, scan, data_report, metrics, wall_time_s
        )
        if reason := unmeasured_reason(scan, splits):
            card[NOT_SERVABLE] = reason
        write_json(run_dir / CARD_FILE, card)

        events.emit(Stage("export", "Exporting to TFLite and TF.js"))
        log("  exporting to TFLite (float, int8) and TF.js, checked against Keras")
        export_and_record(run_dir, x["test"], y["test"], tfjs=config.export_tfjs)
        for leftover in (CHECKPOINT_FILE, BEST_FILE):
            (run_dir / leftover).unlink(missing_ok=True)
        write_json(run_dir / CONFIG_FILE, _record(config))  # the data path made portable
        final = store.finalize(run_id)
        EventLog(final).emit(Done(run_id, round(time.time() - started, 1)))
        log(f"run {run_id} finished in {time.time() - started:.0f} s: {final}")
        return final
    except TrainingCancelled:
        events.emit(Cancelled(_kept_text(read_json(run_dir / STATE_FILE, {}))))
        log(f"run {run_id} stopped; resume with: facemask train --resume --run-id {run_id}")
        raise
    except Exception as exc:
        events.emit(Error(str(exc) or type(exc).__name__))
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        (run_dir / PID_FILE).unlink(missing_ok=True)


def _kept_text(state: dict[str, Any]) -> str:
    """What a cancelled run keeps, in words, from its resume state: the checkpoint of its last
    finished epoch (an epoch that was running is stopped at once and trained again)."""
    if not state.get("epoch"):
        return "Stopped before the first epoch finished; resuming starts the training over."
    phase = {"head": "the head", "fine": "fine-tuning"}.get(state.get("phase"), state.get("phase"))
    return (
        f"Stopped; the checkpoint of the last finished epoch ({phase}, epoch {state['epoch']}) "
        "is kept and resuming continues from it."
    )


class _Fitter:
    """Runs the phases, checkpointing each epoch so a run can resume where it stopped."""

    def __init__(self, config, run_dir, events, log, x, y, state, stops, bare=None) -> None:
        from facemask.augment import make_dataset

        self.config, self.run_dir, self.events, self.log = config, run_dir, events, log
        self.stops = stops
        self.train_ds = make_dataset(
            x["train"], y["train"], config.batch_size, training=True,
            augment=config.augment, seed=config.seed, bare_index=bare, occluders=config.occluders,
        )  # fmt: skip
        self.class_weight = (
            {i: config.bare_weight if i == bare else 1.0 for i in range(int(y["train"].max()) + 1)}
            if bare is not None and config.bare_weight != 1.0
            else None
        )
        self.val_ds = make_dataset(x["val"], y["val"], 64, training=False)
        self.n_train = len(x["train"])
        self.x_train, self.y_train = x["train"], y["train"]
        self.state = state  # {"phase": ..., "epoch": epochs done in it, "best": val_loss}
        if not state:
            history.start(run_dir)
        else:  # a kill between history.csv and state.json may have left one row too many
            head = config.epochs_head if state["phase"] == "fine" else 0
            history.trim(run_dir, head + int(state["epoch"]))

    def phase(self, model, name: str, epochs: int, learning_rate: float) -> None:
        done = self._epochs_done(name)
        if done is None:  # already past this phase
            self._restore(model)
            return
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        if done:
            self._restore(model)
            self.log(f"  resuming phase {name} after epoch {done}/{epochs}")
        if done >= epochs:
            return
        self.log(f"  phase {name}: {epochs} epochs at learning rate {learning_rate:g}")
        recorder = _EpochRecorder(self, name, epochs, learning_rate)
        model.fit(
            self.train_ds,
            validation_data=self.val_ds,
            epochs=epochs,
            initial_epoch=done,
            class_weight=self.class_weight,
            verbose=1 if sys.stdout.isatty() else 2,
            callbacks=[
                recorder,
                keras.callbacks.EarlyStopping("val_loss", patience=self.config.patience),
            ],
        )

    def add_hard_negatives(self, model, bare: int) -> None:
        """Hard negatives from the training set's own bare faces: the share
        `config.hard_negatives` that the model (after the head phase; on resume, the last
        checkpoint) finds most mask-like, sharp or shrunk to a small face, is repeated
        HARD_COPIES more times in the fine-tuning data."""
        from facemask.augment import make_dataset

        idx = np.flatnonzero(self.y_train == bare)
        score = np.zeros(len(idx))
        for side in (None, *SMALL_FACE_SIZES[:2]):
            faces = self.x_train[idx] if side is None else degrade(self.x_train[idx], side)
            probs = model.predict(faces.astype(np.float32), batch_size=64, verbose=0)
            score = np.maximum(score, 1.0 - probs[:, bare])
        order = np.argsort(-score, kind="stable")[: int(self.config.hard_negatives * len(idx))]
        hard = idx[order]
        extra = np.repeat(hard, HARD_COPIES)
        x = np.concatenate([self.x_train, self.x_train[extra]])
        y = np.concatenate([self.y_train, self.y_train[extra]])
        self.train_ds = make_dataset(
            x, y, self.config.batch_size, training=True, augment=self.config.augment,
            seed=self.config.seed, bare_index=bare, occluders=self.config.occluders,
        )  # fmt: skip
        self.n_train = len(x)
        lowest = f", p(mask) >= {score[order[-1]]:.3f}" if len(order) else ""
        self.log(f"  hard negatives: {len(hard)} bare faces repeated {HARD_COPIES}x{lowest}")

    def _epochs_done(self, name: str) -> int | None:
        if not self.state:
            return 0
        if self.state["phase"] == name:
            return int(self.state["epoch"])
        return None if (self.state["phase"], name) == ("fine", "head") else 0

    def _restore(self, model) -> None:
        checkpoint = self.run_dir / CHECKPOINT_FILE
        if not checkpoint.is_file():
            return
        try:
            model.load_weights(checkpoint)
        except (OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0]
            raise RunError(
                f"The checkpoint of run {self.run_dir.name} cannot be read ({reason}); "
                "start a new training instead of resuming this one."
            ) from exc


class _EpochRecorder(keras.callbacks.Callback):
    """Per batch and epoch: progress events, epoch timing, history.csv, checkpoints and the
    resume state."""

    def __init__(self, fitter: _Fitter, phase: str, epochs: int, learning_rate: float) -> None:
        super().__init__()
        self.fitter, self.phase, self.epochs, self.learning_rate = (
            fitter,
            phase,
            epochs,
            learning_rate,
        )
        self.batches = int(np.ceil(fitter.n_train / fitter.config.batch_size))
        self._last_emit = 0.0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch_start = time.time()
        self.epoch_index = epoch
        self.fitter.events.emit(EpochBegin(self.phase, epoch + 1, self.epochs))

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        now = time.time()
        if now - self._last_emit < 1.0 and batch + 1 < self.batches:
            return
        self._last_emit = now
        elapsed = now - self.epoch_start
        eta = elapsed / (batch + 1) * (self.batches - batch - 1)
        self.fitter.events.emit(
            Batch(self.phase, self.epoch_index + 1, self.epochs, batch + 1, self.batches,
                  eta_s=round(eta, 1), logs=_round(logs))
        )  # fmt: skip

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        seconds = time.time() - self.epoch_start
        rate = self.fitter.n_train / seconds if seconds else 0.0
        logs = _round(logs)
        fitter = self.fitter
        with fitter.stops.protect():  # checkpoint, best, state and history agree, or none moved
            self._record_epoch(epoch, logs, seconds, rate)
        scores = ", ".join(f"{k} {v:.4f}" for k, v in logs.items() if isinstance(v, float))
        fitter.log(
            f"  {self.phase} epoch {epoch + 1}/{self.epochs}: {seconds:.1f} s, "
            f"{rate:.0f} images/s, {scores}"
        )

    def _record_epoch(self, epoch: int, logs: dict, seconds: float, rate: float) -> None:
        fitter = self.fitter
        _save_weights(self.model, fitter.run_dir / CHECKPOINT_FILE)
        state = dict(fitter.state)
        val_loss = logs.get("val_loss")
        if val_loss is not None and (state.get("best") is None or val_loss < state["best"]):
            state["best"] = val_loss
            _save_weights(self.model, fitter.run_dir / BEST_FILE)
        state.update(phase=self.phase, epoch=epoch + 1)
        global_epoch = epoch + 1 + (fitter.config.epochs_head if self.phase == "fine" else 0)
        # NOTE: history before state: a kill between them leaves a row that resume trims
        history.append(fitter.run_dir, {
            "epoch": global_epoch, "phase": self.phase, "phase_epoch": epoch + 1,
            **{k: logs.get(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
            "learning_rate": self.learning_rate, "seconds": round(seconds, 2),
            "images_per_s": round(rate, 1),
        })  # fmt: skip
        write_json(fitter.run_dir / STATE_FILE, state)
        fitter.state = state
        fitter.events.emit(
            Epoch(self.phase, epoch + 1, self.epochs, logs, seconds=round(seconds, 2),
                  images_per_s=round(rate, 1))
        )  # fmt: skip


def _round(logs: dict | None) -> dict[str, float]:
    return {k: round(float(v), 5) for k, v in (logs or {}).items() if np.isscalar(v)}


def _evaluate(model, x, y, labels) -> dict:
    def predict(batch: np.ndarray) -> np.ndarray:
        return model.predict(batch.astype(np.float32), batch_size=64, verbose=0)

    return {
        "test": classification_metrics(y["test"], predict(x["test"]), labels),
        "test_small_faces": small_face_metrics(predict, x["test"], y["test"], labels),
        "val": classification_metrics(y["val"], predict(x["val"]), labels),
    }


def _metrics_line(metrics: dict) -> str:
    test, small = metrics["test"], metrics["test_small_faces"]
    return (
        f"  test accuracy {test['accuracy']:.2%} (macro F1 {test['macro_f1']:.3f}, "
        f"ROC AUC {test['roc_auc']}); small faces {small['accuracy']:.2%} "
        f"{small['accuracy_by_side_px']}"
    )


def _record(config: TrainConfig) -> dict:
    """config.json as a finished run keeps it: the dataset named portably (files.portable_path)."""
    return {**asdict(config), "data": portable_path(config.data)}
