// Labels per face as facemask.pipeline decides them, and the same per-face smoothing
// (FaceTracker: match by box overlap, moving average of probabilities, label hysteresis).

/**
 * The label index for probabilities under the card's thresholds ({label: T}), as
 * facemask.classify.decide_indices: a label needs p >= its threshold (a label without one always
 * passes); the most probable passing label wins; if none passes, the most probable one.
 */
export function decide(probabilities, labels, thresholds = {}) {
  let best = 0;
  let bestScore = -Infinity;
  probabilities.forEach((p, i) => {
    const score = p + (p >= (thresholds[labels[i]] ?? 0) ? 2 : 0);
    if (score > bestScore) {
      best = i;
      bestScore = score;
    }
  });
  return best;
}

export function iou(a, b) {
  const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** Port of facemask.pipeline.FaceTracker; its parameters come from Python (component args). */
export class FaceTracker {
  constructor({ alpha, hysteresis, min_iou: minIou, max_missed: maxMissed }, labels, thresholds) {
    Object.assign(this, { alpha, hysteresis, minIou, maxMissed, labels, thresholds });
    this.tracks = [];
    this.nextId = 1;
  }

  /** detections: [{box, score, probabilities}] -> [{box, label, confidence, score, trackId}]. */
  update(detections) {
    const unmatched = this.tracks.map((_, j) => j);
    const smoothed = [];
    for (const det of [...detections].sort((a, b) => b.score - a.score)) {
      const probs = Float32Array.from(det.probabilities);
      let best = null;
      let bestIou = this.minIou;
      for (const j of unmatched) {
        const overlap = iou(det.box, this.tracks[j].box);
        if (overlap >= bestIou) {
          best = j;
          bestIou = overlap;
        }
      }
      let track;
      if (best === null) {
        const label = decide(probs, this.labels, this.thresholds);
        track = { id: this.nextId++, box: det.box, probabilities: probs, label, missed: 0 };
        this.tracks.push(track);
      } else {
        unmatched.splice(unmatched.indexOf(best), 1);
        track = this.tracks[best];
        track.box = det.box;
        track.missed = 0;
        track.probabilities = track.probabilities.map(
          (p, k) => this.alpha * probs[k] + (1 - this.alpha) * p,
        );
        // The current label holds unless the rule still picks another with it raised by
        // `hysteresis` (facemask.pipeline.FaceTracker).
        const held = Float32Array.from(track.probabilities);
        held[track.label] += this.hysteresis;
        track.label = decide(held, this.labels, this.thresholds);
      }
      smoothed.push({
        box: det.box,
        label: this.labels[track.label],
        confidence: track.probabilities[track.label],
        score: det.score,
        trackId: track.id,
      });
    }
    const seen = new Set(smoothed.map((d) => d.trackId));
    for (const track of this.tracks) if (!seen.has(track.id)) track.missed += 1;
    this.tracks = this.tracks.filter((t) => t.missed <= this.maxMissed);
    return smoothed;
  }
}
