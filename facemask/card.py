"""A model's card: card.json built at the end of a training, and rendered as MODEL_CARD.md."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facemask import __version__, history
from facemask.classify import CROP_MARGIN, crop_margin
from facemask.detect import TRAINING
from facemask.files import TFLITE_FILE, TFLITE_INT8_FILE, portable_path

if TYPE_CHECKING:
    import keras

    from facemask.config import TrainConfig
    from facemask.data import DatasetScan


def _pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "n/a"


def _mb(n: Any) -> str:
    return f"{n / 1e6:.1f} MB" if isinstance(n, (int, float)) else "n/a"


def card_markdown(card: dict[str, Any]) -> str:
    """MODEL_CARD.md text for a card (the model-folder contract in docs/architecture.md)."""
    metrics = card.get("metrics", {})
    test, small, val = (metrics.get(k, {}) for k in ("test", "test_small_faces", "val"))
    labels = card.get("labels", [])
    training = card.get("training", {})
    dataset = card.get("dataset", {})
    lines = [
        f"# Model card: {card.get('name')}",
        "",
        f"- Architecture: {card.get('architecture')} + global average pooling + dropout + "
        f"softmax over {len(labels)} labels ({', '.join(labels)}), "
        f"input {card.get('input_size')} px RGB in [0, 255] (preprocessing inside the model).",
        f"- Weights: {card.get('weights_note', card.get('weights'))}.",
        f"- Parameters: {card.get('parameters', {}).get('total', 0):,}.",
        f"- Served file: `{card.get('serving', {}).get('file')}` "
        f"({card.get('serving', {}).get('reason', '')}).",
        f"- Trained: {card.get('date')} with `{card.get('command')}`.",
        f"- Decision: {decision_text(card)}.",
        _crop_text(card),
        *_at_threshold(card),
        "",
        "## Data",
        f"- {dataset.get('name')}: {dataset.get('provenance')}.",
        f"- {dataset.get('images')} images; faces found by the training detector in "
        f"{dataset.get('face_found')} ({dataset.get('found_after_padding')} after padding the "
        f"photo); {dataset.get('no_face_used_whole')} used whole; "
        f"{dataset.get('skipped')} files skipped.",
        "- Split (near-duplicates grouped by perceptual hash, never across splits): "
        + "; ".join(f"{k} {sum(v.values())}" for k, v in dataset.get("splits", {}).items())
        + ".",
        "",
        "## Accuracy",
        "| split | images | accuracy | macro F1 | ROC AUC |",
        "|---|---|---|---|---|",
    ]
    served = metrics.get("served", {})
    rows = [
        ("validation (Keras)", val),
        ("test (Keras)", test),
        ("test small faces (Keras)", small),
    ]
    if served:
        rows += [
            (f"test (served `{served.get('file')}`)", served.get("test", {})),
            (
                f"test small faces (served `{served.get('file')}`)",
                served.get("test_small_faces", {}),
            ),
        ]
    for name, m in rows:
        if m:
            lines.append(
                f"| {name} | {m.get('n')} | {_pct(m.get('accuracy'))} | "
                f"{m.get('macro_f1')} | {m.get('roc_auc')} |"
            )
    if small.get("accuracy_by_side_px"):
        sides = ", ".join(f"{s} px: {_pct(a)}" for s, a in small["accuracy_by_side_px"].items())
        lines += ["", f"Small faces (test crops shrunk to N px and scaled back): {sides}."]
    if test.get("per_class"):
        lines += [
            "",
            "| class (test) | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
        ]
        for label in labels:
            c = test["per_class"][label]
            lines.append(
                f"| {label} | {c['precision']} | {c['recall']} | {c['f1']} | {c['support']} |"
            )
        lines += [
            "",
            "Confusion (rows true, columns predicted): "
            + "; ".join(
                f"{label}: {row}" for label, row in zip(labels, test["confusion"], strict=False)
            ),
        ]
    exports = card.get("exports", {})
    if exports:
        lines += [
            "",
            "## Exports (checked against Keras on real face crops)",
            "| variant | size | label agreement | max abs prob diff | ms / crop |",
            "|---|---|---|---|---|",
        ]
        for name, e in exports.items():
            if isinstance(e, dict) and "skipped" not in e:
                lines.append(
                    f"| {name} | {_mb(e.get('bytes'))} | {e.get('agreement')}% | "
                    f"{e.get('max_abs_diff')} | {e.get('ms_per_crop', 'n/a')} |"
                )
            elif isinstance(e, dict):
                lines.append(f"| {name} | skipped: {e['skipped']} | | | |")
    if card.get("latency_ms"):
        lines += ["", "## Latency", ""]
        lines += [f"- {k}: {v}" for k, v in card["latency_ms"].items()]
    if training:
        lines += [
            "",
            "## Training",
            f"- Phases: {training.get('epochs_head')} epochs head (base frozen, lr "
            f"{training.get('learning_rates', {}).get('head')}), {training.get('epochs_fine')} "
            f"epochs fine-tuning the top {training.get('fine_tune_layers')} layers (lr "
            f"{training.get('learning_rates', {}).get('fine')}); early stopping on val loss.",
            f"- Wall time {training.get('wall_time_s')} s on {training.get('machine')}; "
            f"images/s by phase: {training.get('images_per_s_by_phase')}.",
        ]
    if card.get("tradeoff"):
        lines += ["", "## Accuracy / latency trade-off (input size)", ""]
        lines += tradeoff_markdown(card["tradeoff"]).splitlines()
    if card.get("candidates"):
        lines += ["", "## Bare faces called masked: candidates on scene faces", ""]
        lines += scene_errors_markdown(card["candidates"]).splitlines()
    if card.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in card["notes"]]
    return "\n".join(lines) + "\n"


def tradeoff_markdown(rows: list[dict[str, Any]]) -> str:
    """Models side by side (tools/tradeoff.py rows): accuracy on the test split, on it degraded
    to small faces and on annotated scene faces, and TFLite ms per face crop."""

    def ms(row: dict[str, Any], name: str) -> str:
        value = row.get("ms_per_crop", {}).get(name)
        return f"{value:.2f}" if isinstance(value, (int, float)) else "n/a"

    lines = [
        "| input | test | small faces (24-48 px) | scene faces | ms/crop float | ms/crop int8 | "
        "int8 same label |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        scene = row.get("scene_faces", {})
        agreement = row.get("int8_agreement")
        lines.append(
            f"| {row['input_size']} px | {_pct(row.get('test_accuracy'))} | "
            f"{_pct(row.get('small_faces_accuracy'))} | {_pct(scene.get('accuracy'))} | "
            f"{ms(row, TFLITE_FILE)} | {ms(row, TFLITE_INT8_FILE)} | "
            + (f"{agreement:g}% |" if isinstance(agreement, (int, float)) else "n/a |")
        )
    return "\n".join(lines) + "\n"


def _crop_text(card: dict[str, Any]) -> str:
    """How faces are cut for this model: the card's crop_margin, and the training crops'."""
    served = crop_margin(card)
    trained = card.get("training", {}).get("crop_margin", CROP_MARGIN)
    line = f"- Face crop: the detector's box squared and widened by {served:g} of its side"
    if served == trained:
        return line + " (as the training crops were cut)."
    how = card.get("crop_margin_choice", {}).get("how")
    return line + f"; the training crops had {trained:g}" + (f" ({how})." if how else ".")


def _at_threshold(card: dict[str, Any]) -> list[str]:
    choice = card.get("threshold_choice", {})
    test, small = choice.get("test"), choice.get("test_small_faces")
    if not test:
        return []
    line = f"- Under this rule: test accuracy {_pct(test.get('accuracy'))}"
    if small:
        line += f", small faces {_pct(small.get('accuracy'))}"
    return [line + " (the tables below are the most probable label's)."]


def decision_text(card: dict[str, Any], short: bool = False) -> str:
    """The card's decision rule in words (`thresholds`: facemask.classify.decide_indices);
    `short` for the sidebar."""
    thresholds = card.get("thresholds") or {}
    if not thresholds:
        return "the most probable label"
    if short:
        return ", ".join(f"{label} if p >= {t:g}" for label, t in thresholds.items())
    rule = "; ".join(f"{label} only when p({label}) >= {t:g}" for label, t in thresholds.items())
    chosen = card.get("threshold_choice", {}).get("how")
    return f"{rule}, else the most probable other label" + (f" ({chosen})" if chosen else "")


def scene_errors_markdown(rows: list[dict[str, Any]]) -> str:
    """Models side by side on scene faces (tools/tradeoff.py rows with --scenes): bare faces
    called masked and masked faces recalled, at the argmax and at a chosen threshold, the
    faces cut from their annotated boxes (the classifier alone) and, at the threshold, from
    the boxes of the PHOTO detector that found them (as the app cuts them)."""

    def errors(figures: dict[str, Any] | None) -> str:
        if not figures or "bare_faces" not in figures:
            return "n/a | n/a"
        share = figures["bare_called_masked"] / max(figures["bare_faces"], 1)
        return (
            f"{figures['bare_called_masked']} of {figures['bare_faces']} ({share:.1%}) | "
            f"{_pct(figures.get('masked_recall'))}"
        )

    lines = [
        "| model | test | small faces | argmax: bare called masked | masked recall | "
        "threshold | bare called masked | masked recall | "
        "with detector: bare called masked | masked recall | ms/crop float |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        chosen = row.get("chosen_threshold") or {}
        threshold = chosen.get("threshold")
        ms = row.get("ms_per_crop", {}).get(TFLITE_FILE)
        name = row.get("label", row.get("model"))
        if "crop_margin" in row:
            name = f"{name}, crop margin {row['crop_margin']:g}"
        lines.append(
            f"| {name} | {_pct(row.get('test_accuracy'))} | "
            f"{_pct(row.get('small_faces_accuracy'))} | {errors(row.get('scene_faces_argmax'))} | "
            + (f"{threshold:g}" if isinstance(threshold, (int, float)) else "n/a")
            + f" | {errors(chosen.get('scene_faces'))} | "
            + f"{errors(chosen.get('detected_scene_faces'))} | "
            + (f"{ms:.2f} |" if isinstance(ms, (int, float)) else "n/a |")
        )
    return "\n".join(lines) + "\n"


def build_card(
    config: TrainConfig,
    run_id: str,
    run_dir: Path,
    model: keras.Model,
    labels: list[str],
    scan: DatasetScan,
    data_report: dict[str, Any],
    metrics: dict[str, Any],
    wall_time_s: float,
) -> dict[str, Any]:
    """A finished training's card.json (the model-folder contract in docs/architecture.md):
    what the model is, what it was trained on and how, and how it measured; the exports add
    their own records later (facemask.export)."""
    from facemask.models import get_backbone

    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return {
        "name": config.name or run_id,
        "architecture": get_backbone(config.backbone).title,
        "backbone": config.backbone,
        "labels": labels,
        "input_size": config.input_size,
        "crop_margin": config.crop_margin,
        "input": "RGB float32 in [0, 255]; preprocessing is inside the model",
        "weights": config.weights if config.weights in ("imagenet", "none") else "file",
        "weights_note": (
            "base initialised from ImageNet weights (Keras cache), then fine-tuned"
            if config.weights != "none"
            else "trained from scratch (no ImageNet weights)"
        ),
        "parameters": {"total": int(model.count_params()), "trainable_at_end": trainable},
        "dataset": {
            "path": portable_path(scan.root),
            "name": scan.root.name,
            "provenance": _provenance(scan.root),
            **{
                k: data_report[k] for k in ("images", "face_found", "found_after_padding", "splits")
            },
            "no_face_used_whole": len(data_report["no_face_used_whole"]),
            "skipped": len(data_report["skipped"]),
        },
        "metrics": metrics,
        "training": {
            "epochs_head": config.epochs_head,
            "epochs_fine": config.epochs_fine if config.fine_tune_layers else 0,
            "fine_tune_layers": config.fine_tune_layers,
            "batch_size": config.batch_size,
            "learning_rates": {"head": config.lr_head, "fine": config.lr_fine},
            "augment": config.augment,
            "bare_weight": config.bare_weight,
            "hard_negatives": config.hard_negatives,
            "crop_margin": config.crop_margin,
            "occluders": config.occluders,
            **history.phase_totals(history.read(run_dir)),
            "wall_time_s": wall_time_s,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU",
        },
        "seed": config.seed,
        "detector_for_crops": asdict(TRAINING),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": config.command,
        "facemask_version": __version__,
    }


def _provenance(root: Path) -> str:
    source = root / "SOURCE.md"
    if source.is_file():
        for line in source.read_text(errors="replace").splitlines():
            if "Repository" in line or "repository" in line:
                return line.strip("-* ").strip()
    return "not recorded (no SOURCE.md in the dataset folder)"
