"""MODEL_CARD.md rendering from a real run's card.json."""

import json

from facemask.card import card_markdown


def test_card_markdown_carries_the_measured_numbers(tiny_model_dir):
    card = json.loads((tiny_model_dir / "card.json").read_text())
    text = card_markdown(card)
    test = card["metrics"]["test"]
    assert text.startswith("# Model card: tiny")
    assert f"| test (Keras) | {test['n']} | {test['accuracy']:.1%} |" in text
    assert f"(served `{card['serving']['file']}`)" in text
    assert "Confusion (rows true, columns predicted)" in text
    assert card["command"] in text
