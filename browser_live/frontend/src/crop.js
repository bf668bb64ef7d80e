// Face crops exactly as facemask.pipeline.crop_faces cuts them: a square box around the detector's
// box with a margin, parts outside the frame filled by replicating the border, resized with
// OpenCV's INTER_AREA when shrinking and INTER_LINEAR when enlarging. Raw RGB 0-255 out: the
// model holds its own preprocessing.

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

/** OpenCV's INTER_AREA weights for one axis: for each output index, [[source index, weight]]. */
function areaTaps(srcSize, dstSize) {
  const scale = srcSize / dstSize;
  const taps = [];
  for (let d = 0; d < dstSize; d++) {
    const f1 = d * scale;
    const f2 = f1 + scale;
    const cell = Math.min(scale, srcSize - f1);
    let s2 = Math.min(Math.floor(f2), srcSize - 1);
    const s1 = Math.min(Math.ceil(f1), s2);
    const row = [];
    if (s1 - f1 > 1e-3) row.push([s1 - 1, (s1 - f1) / cell]);
    for (let s = s1; s < s2; s++) row.push([s, 1 / cell]);
    if (f2 - s2 > 1e-3) row.push([s2, Math.min(Math.min(f2 - s2, 1), cell) / cell]);
    taps.push(row);
  }
  return taps;
}

/** OpenCV's INTER_LINEAR weights for one axis (half-pixel centres, clamped at the ends). */
function linearTaps(srcSize, dstSize) {
  const scale = srcSize / dstSize;
  const taps = [];
  for (let d = 0; d < dstSize; d++) {
    let f = (d + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    f -= s;
    if (s < 0) {
      s = 0;
      f = 0;
    }
    if (s >= srcSize - 1) {
      s = srcSize - 1;
      f = 0;
    }
    taps.push(f > 0 ? [[s, 1 - f], [s + 1, f]] : [[s, 1]]);
  }
  return taps;
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
    const square = squareBox(box, margin);
    const [x1, y1, x2, y2] = square.map((v, i) => v - origin[i % 2]);
    const cx1 = Math.max(x1, 0);
    const cy1 = Math.max(y1, 0);
    const cx2 = Math.min(x2, width);
    const cy2 = Math.min(y2, height);
    if (cx2 <= cx1 || cy2 <= cy1) return; // nothing of it in the frame: zeros, as in Python
    const patchW = x2 - x1;
    const patchH = y2 - y1;
    const shrink = patchH > size;
    const xTaps = shrink ? areaTaps(patchW, size) : linearTaps(patchW, size);
    const yTaps = shrink ? areaTaps(patchH, size) : linearTaps(patchH, size);
    // Border replication = source coordinates clamped to the part of the box inside the frame.
    const column = (i) => Math.min(Math.max(x1 + i, cx1), cx2 - 1);
    const row = (j) => Math.min(Math.max(y1 + j, cy1), cy2 - 1);
    const rows = new Map(); // patch row -> that row resampled horizontally (size x 3)
    const horizontal = (j) => {
      let line = rows.get(j);
      if (line) return line;
      line = new Float32Array(size * 3);
      const base = row(j) * width;
      for (let d = 0; d < size; d++) {
        let r = 0;
        let g = 0;
        let b = 0;
        for (const [i, w] of xTaps[d]) {
          const p = (base + column(i)) * 4;
          r += w * data[p];
          g += w * data[p + 1];
          b += w * data[p + 2];
        }
        line[d * 3] = r;
        line[d * 3 + 1] = g;
        line[d * 3 + 2] = b;
      }
      rows.set(j, line);
      return line;
    };
    const offset = n * size * size * 3;
    for (let dy = 0; dy < size; dy++) {
      const target = offset + dy * size * 3;
      for (const [j, w] of yTaps[dy]) {
        const line = horizontal(j);
        for (let k = 0; k < size * 3; k++) out[target + k] += w * line[k];
      }
      for (let k = 0; k < size * 3; k++) {
        out[target + k] = Math.min(255, Math.max(0, Math.round(out[target + k])));
      }
    }
  });
  return out;
}
