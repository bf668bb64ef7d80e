// Face crops exactly as facemask.pipeline.crop_faces cuts them: a square box around the detector's
// box with a margin, parts outside the frame filled by replicating the border, resized with
// OpenCV's INTER_AREA when shrinking by 2x or more and INTER_LINEAR otherwise. Raw RGB 0-255
// out: the model holds its own preprocessing.

/** Python's round(): halves go to the even neighbour (Math.round sends them up). */
export function roundHalfEven(value) {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** facemask.pipeline.square_box: the square, margin-padded box (may extend past the frame). */
export function squareBox([x1, y1, x2, y2], margin) {
  const side = Math.max(x2 - x1, y2 - y1) * (1 + margin);
  const cx = (x1 + x2) / 2;
  const cy = (y1 + y2) / 2;
  const half = Math.max(side, 1) / 2;
  return [
    roundHalfEven(cx - half),
    roundHalfEven(cy - half),
    roundHalfEven(cx + half),
    roundHalfEven(cy + half),
  ];
}

/** A resampling table for one axis, CSR-style: output d reads taps start[d] .. start[d + 1] - 1
 * ({index: source pixel, weight}), from `taps(d, scale)` = [[source pixel, weight], ...]. */
function tapTable(srcSize, dstSize, taps) {
  const scale = srcSize / dstSize;
  const index = [];
  const weight = [];
  const start = new Int32Array(dstSize + 1);
  for (let d = 0; d < dstSize; d++) {
    start[d] = index.length;
    for (const [i, w] of taps(d, scale)) index.push(i), weight.push(w);
  }
  start[dstSize] = index.length;
  return { start, index: Int32Array.from(index), weight: Float32Array.from(weight) };
}

/** OpenCV's INTER_AREA weights for one axis. */
function areaTaps(srcSize, dstSize) {
  return tapTable(srcSize, dstSize, (d, scale) => {
    const f1 = d * scale;
    const f2 = f1 + scale;
    const cell = Math.min(scale, srcSize - f1);
    const s2 = Math.min(Math.floor(f2), srcSize - 1);
    const s1 = Math.min(Math.ceil(f1), s2);
    const taps = [];
    if (s1 - f1 > 1e-3) taps.push([s1 - 1, (s1 - f1) / cell]);
    for (let s = s1; s < s2; s++) taps.push([s, 1 / cell]);
    if (f2 - s2 > 1e-3) taps.push([s2, Math.min(Math.min(f2 - s2, 1), cell) / cell]);
    return taps;
  });
}

/** OpenCV's INTER_LINEAR weights for one axis (half-pixel centres, clamped at the ends). */
function linearTaps(srcSize, dstSize) {
  return tapTable(srcSize, dstSize, (d, scale) => {
    const f = (d + 0.5) * scale - 0.5;
    const s = Math.floor(f);
    if (s < 0) return [[0, 1]];
    if (s >= srcSize - 1) return [[srcSize - 1, 1]];
    return f > s ? [[s, 1 - (f - s)], [s + 1, f - s]] : [[s, 1]];
  });
}

/**
 * Crops for `boxes` in an RGBA frame ({data, width, height}, e.g. ImageData): one Float32Array
 * of N x size x size x 3 raw RGB values (0-255, rounded to whole pixels like a uint8 crop).
 * `frame` may be a part of the picture whose top-left corner is at `origin` (boxes stay in the
 * picture's pixels); it must hold every crop square's part inside the picture.
 */
export function cropFaces(frame, boxes, size, margin, origin = [0, 0]) {
  const { data, width, height } = frame;
  const out = new Float32Array(boxes.length * size * size * 3);
  boxes.forEach((box, n) => {
    const [x1, y1, x2, y2] = squareBox(box, margin).map((v, i) => v - origin[i % 2]);
    const cx1 = Math.max(x1, 0);
    const cy1 = Math.max(y1, 0);
    const cx2 = Math.min(x2, width);
    const cy2 = Math.min(y2, height);
    if (cx2 <= cx1 || cy2 <= cy1) return; // nothing of it in the frame: zeros, as in Python
    const patchW = x2 - x1;
    const patchH = y2 - y1;
    const shrink = patchH >= 2 * size; // facemask.pipeline.crop_interpolation
    const xt = shrink ? areaTaps(patchW, size) : linearTaps(patchW, size);
    const yt = shrink ? areaTaps(patchH, size) : linearTaps(patchH, size);
    // Border replication = source coordinates clamped to the part of the box inside the frame.
    const column = xt.index.map((i) => Math.min(Math.max(x1 + i, cx1), cx2 - 1) * 4);
    const rowOf = (j) => Math.min(Math.max(y1 + j, cy1), cy2 - 1);
    const lines = new Float32Array(patchH * size * 3); // each patch row resampled horizontally
    const done = new Uint8Array(patchH);
    const offset = n * size * size * 3;
    for (let dy = 0; dy < size; dy++) {
      const target = offset + dy * size * 3;
      for (let t = yt.start[dy]; t < yt.start[dy + 1]; t++) {
        const j = yt.index[t];
        const line = j * size * 3;
        if (!done[j]) {
          done[j] = 1;
          const base = rowOf(j) * width * 4;
          for (let d = 0; d < size; d++) {
            let r = 0;
            let g = 0;
            let b = 0;
            for (let k = xt.start[d]; k < xt.start[d + 1]; k++) {
              const p = base + column[k];
              const w = xt.weight[k];
              r += w * data[p];
              g += w * data[p + 1];
              b += w * data[p + 2];
            }
            lines[line + d * 3] = r;
            lines[line + d * 3 + 1] = g;
            lines[line + d * 3 + 2] = b;
          }
        }
        const w = yt.weight[t];
        for (let k = 0; k < size * 3; k++) out[target + k] += w * lines[line + k];
      }
      for (let k = target; k < target + size * 3; k++) {
        out[k] = Math.min(255, Math.max(0, Math.round(out[k])));
      }
    }
  });
  return out;
}
