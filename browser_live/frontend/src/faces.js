// BlazeFace short range around the network, as facemask.detect.LiteRTBlazeFace and
// FaceDetector.detect do it in Python: letterbox the frame to 128x128, scale to [-1, 1], decode
// the 896 SSD anchors, keep scores >= min_score, weighted NMS, whole pixels, clip, min size.
// Pure JavaScript (no TF.js here): the network itself is tflite.js's.

export const INPUT = 128;
const STRIDES = [8, 16, 16, 16];

/** facemask.detect.ssd_anchors: anchor centres [x, y] in [0, 1], in the outputs' order. */
export function ssdAnchors(inputSize = INPUT, strides = STRIDES) {
  const anchors = [];
  let layer = 0;
  while (layer < strides.length) {
    let same = 0;
    while (layer + same < strides.length && strides[layer + same] === strides[layer]) same++;
    const cells = Math.ceil(inputSize / strides[layer]);
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
        for (let k = 0; k < 2 * same; k++) anchors.push([(x + 0.5) / cells, (y + 0.5) / cells]);
      }
    }
    layer += same;
  }
  return anchors;
}

/**
 * The frame letterboxed into the detector's input, as LiteRTBlazeFace (cv2.warpAffine, bilinear,
 * black outside, rounded to whole levels) then scaled to [-1, 1]: {input: Float32Array of
 * 128 x 128 x 3, side, left, top} where the square ROI is `side` px at (left, top).
 */
export function letterbox({ data, width, height }) {
  const side = Math.max(width, height);
  const left = (width - side) / 2;
  const top = (height - side) / 2;
  const step = side / INPUT; // one input pixel, in frame pixels
  const input = new Float32Array(INPUT * INPUT * 3);
  const at = (x, y, c) => (x < 0 || y < 0 || x >= width || y >= height ? 0 : data[(y * width + x) * 4 + c]);
  for (let v = 0; v < INPUT; v++) {
    const sy = v * step + top;
    const y0 = Math.floor(sy);
    const fy = sy - y0;
    for (let u = 0; u < INPUT; u++) {
      const sx = u * step + left;
      const x0 = Math.floor(sx);
      const fx = sx - x0;
      const o = (v * INPUT + u) * 3;
      for (let c = 0; c < 3; c++) {
        const level =
          fx === 0 && fy === 0
            ? at(x0, y0, c)
            : (1 - fy) * ((1 - fx) * at(x0, y0, c) + fx * at(x0 + 1, y0, c)) +
              fy * ((1 - fx) * at(x0, y0 + 1, c) + fx * at(x0 + 1, y0 + 1, c));
        input[o + c] = Math.round(level) * (2 / 255) - 1;
      }
    }
  }
  return { input, side, left, top };
}

/** facemask.detect.box_iou for two boxes. */
function iou(a, b) {
  const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / Math.max(union, 1e-12) : 0;
}

/**
 * facemask.detect.weighted_nms: each group overlapping the best box by IoU > `threshold` merges
 * into one box averaged by score; the group keeps its best score. [{box, score}] in, out.
 */
export function weightedNms(candidates, threshold) {
  const order = [...candidates].sort((a, b) => b.score - a.score); // stable, as numpy's
  const free = order.map(() => true);
  const merged = [];
  order.forEach((top, i) => {
    if (!free[i]) return;
    let total = 0;
    const box = [0, 0, 0, 0];
    const group = [];
    order.forEach((c, j) => {
      if (free[j] && (j === i || iou(top.box, c.box) > threshold)) group.push(j);
    });
    for (const j of group) {
      free[j] = false;
      total += order[j].score;
    }
    for (const j of group) {
      const w = order[j].score / total;
      for (let k = 0; k < 4; k++) box[k] += w * order[j].box[k];
    }
    merged.push({ box, score: top.score });
  });
  return merged;
}

/**
 * Faces from the network's two outputs (scores: 896 logits, boxes: 896 x 16 regressors) for
 * a frame letterboxed as {side, left, top} of `width` x `height`: [{box, score}] in whole
 * pixels, clipped, at least `minFace` px on the short side, best first.
 */
export function decodeFaces(scores, regressors, anchors, frame, options) {
  const { side, left, top, width, height } = frame;
  const { minScore, nmsIou, minFace } = options;
  const clipped = Math.min(Math.max(minScore, 1e-7), 1 - 1e-7);
  const minLogit = Math.log(clipped / (1 - clipped));
  const candidates = [];
  for (let i = 0; i < anchors.length; i++) {
    const logit = Math.min(Math.max(scores[i], -100), 100);
    if (logit < minLogit) continue;
    const r = i * 16;
    const cx = regressors[r] / INPUT + anchors[i][0];
    const cy = regressors[r + 1] / INPUT + anchors[i][1];
    const hw = regressors[r + 2] / INPUT / 2;
    const hh = regressors[r + 3] / INPUT / 2;
    candidates.push({ box: [cx - hw, cy - hh, cx + hw, cy + hh], score: 1 / (1 + Math.exp(-logit)) });
  }
  const faces = [];
  for (const { box, score } of weightedNms(candidates, nmsIou)) {
    const x1 = box[0] * side + left;
    const y1 = box[1] * side + top;
    const x2 = box[2] * side + left;
    const y2 = box[3] * side + top;
    // whole pixels as LiteRTBlazeFace reports them (origin and size truncated), then clipped
    const x = Math.trunc(x1);
    const y = Math.trunc(y1);
    const clip = (v, hi) => Math.min(Math.max(v, 0), hi);
    const whole = [
      clip(x, width), clip(y, height),
      clip(x + Math.trunc(x2 - x1), width), clip(y + Math.trunc(y2 - y1), height),
    ];
    if (whole[2] <= whole[0] || whole[3] <= whole[1]) continue;
    if (Math.min(whole[2] - whole[0], whole[3] - whole[1]) < minFace) continue;
    faces.push({ box: whole, score });
  }
  return faces.sort((a, b) => b.score - a.score);
}
