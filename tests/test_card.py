"""MODEL_CARD.md rendering from a real run's card.json."""

import importlib.util
import json
from pathlib import Path

from facemask.card import card_markdown

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def test_card_markdown_carries_the_measured_numbers(tiny_model_dir):
    card = json.loads((tiny_model_dir / "card.json").read_text())
    text = card_markdown(card)
    test = card["metrics"]["test"]
    assert text.startswith("# Model card: tiny")
    assert f"| test (Keras) | {test['n']} | {test['accuracy']:.1%} |" in text
    assert f"(served `{card['serving']['file']}`)" in text
    assert "Confusion (rows true, columns predicted)" in text
    assert card["command"] in text


def test_the_tradeoff_table_comes_from_the_models_cards(tiny_model_dir):
    spec = importlib.util.spec_from_file_location("tradeoff", TOOLS / "tradeoff.py")
    tradeoff = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tradeoff)
    card = json.loads((tiny_model_dir / "card.json").read_text())
    row = tradeoff.row(tiny_model_dir, None)
    assert row["input_size"] == 64
    tradeoff.time_models([tiny_model_dir], [row], rounds=1)
    assert set(row["ms_per_crop"]) == {"model.tflite", "model_int8.tflite"}
    assert all(0 < ms < 1000 for ms in row["ms_per_crop"].values())
    text = card_markdown({**card, "tradeoff": [row]})
    assert "## Accuracy / latency trade-off (input size)" in text
    float_ms = row["ms_per_crop"]["model.tflite"]
    assert f"| 64 px | {card['metrics']['test']['accuracy']:.1%} |" in text
    assert f"| {float_ms:.2f} |" in text


def test_the_card_says_how_faces_are_cut(tiny_model_dir):
    card = json.loads((tiny_model_dir / "card.json").read_text())
    assert "widened by 0.25 of its side (as the training crops were cut)" in card_markdown(card)
    served = {**card, "crop_margin": 0.15, "crop_margin_choice": {"how": "chosen on scenes"}}
    text = card_markdown(served)
    assert "widened by 0.15 of its side; the training crops had 0.25 (chosen on scenes)" in text


def test_the_scene_table_scores_models_at_several_crop_margins(tiny_model_dir, face_scenes):
    """tools/tradeoff.py --crop-margins: one row per margin, faces cut at that margin."""
    spec = importlib.util.spec_from_file_location("tradeoff", TOOLS / "tradeoff.py")
    tradeoff = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tradeoff)
    from facemask.scenes import load_scenes

    scenes = load_scenes(face_scenes)
    faces = len(scenes)  # one annotated face each
    rows = [tradeoff.row(tiny_model_dir, scenes, margin=m) for m in (0.05, 0.6)]
    assert [r["crop_margin"] for r in rows] == [0.05, 0.6]
    assert rows[0]["scene_faces"]["n"] == faces
    assert 0 < rows[0]["detected_scene_faces"]["n"] <= faces  # as the PHOTO detector cut them
    assert tradeoff.row(tiny_model_dir, scenes)["crop_margin"] == 0.25  # the card's own
