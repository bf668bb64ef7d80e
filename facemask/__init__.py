"""facemask: real-time face-mask detection.

One data flow serves every surface (see docs/architecture.md):
frame -> FaceDetector.detect -> crop_faces -> MaskClassifier.predict -> [Detection] -> annotate.
"""

__version__ = "0.1.0"

MASKED = "with_mask"
BARE = "without_mask"
WORN_WRONG = "mask_worn_incorrectly"
"""Nose or mouth uncovered (the scene sets call it `mask_weared_incorrect`)."""
LABELS: tuple[str, ...] = (MASKED, BARE)
"""Default labels in output order. Code must not assume two: a model's card.json is the truth."""
