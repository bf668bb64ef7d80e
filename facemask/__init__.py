"""facemask: real-time face-mask detection.

One data flow serves every surface (see docs/architecture.md):
frame -> FaceDetector.detect -> crop_faces -> MaskClassifier.predict -> [Detection] -> annotate.
"""

__version__ = "0.1.0"

LABELS: tuple[str, ...] = ("with_mask", "without_mask")
"""Default labels in output order. Code must not assume two: a model's card.json is the truth."""
