#!/usr/bin/env bash
# Reproduce facemask/assets/*.tflite: extract the BlazeFace face-detection models (with the
# metadata the mediapipe Tasks FaceDetector needs) from the mediapipe 0.10.21 wheel on PyPI,
# and check every sha256 against facemask/assets/SOURCE.md. Needs pip, unzip and sha256sum.
# Usage: tools/fetch_detector_models.sh [DEST]   (DEST defaults to facemask/assets)
set -euo pipefail

WHEEL=mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl
WHEEL_SHA256=05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3
declare -A MODELS=(
  [face_detection_short_range.tflite]=bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8
  [face_detection_full_range_sparse.tflite]=2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1
)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/facemask/assets}"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m pip download --no-deps mediapipe==0.10.21 --python-version 3.11 \
  --platform manylinux_2_28_x86_64 --only-binary=:all: -d "$work" >/dev/null
echo "$WHEEL_SHA256  $work/$WHEEL" | sha256sum --check --quiet
echo "wheel ok: $WHEEL"

mkdir -p "$dest"
for name in "${!MODELS[@]}"; do
  unzip -q -o -j "$work/$WHEEL" "mediapipe/modules/face_detection/$name" -d "$work/out"
  echo "${MODELS[$name]}  $work/out/$name" | sha256sum --check --quiet
  cp "$work/out/$name" "$dest/$name"
  echo "ok: $dest/$name ($(stat -c %s "$dest/$name") bytes)"
done
