// Which faces of a camera frame the mask classifier must see. A face that has neither moved nor
// changed size since it was last classified, a few frames ago, is not classified again: it takes
// the probabilities of that recent classification. With a few still faces in front of the
// camera, that turns three classifications a frame into about one every other frame, the page's
// largest cost. A face is classified again when it is new, when its box moved or changed enough
// (box IoU with the box it was classified at below `minIou`), and when its classification is
// `maxAge` frames old (at most `refreshPerFrame` such refreshes a frame, the oldest first, so
// that faces seen together are not all classified again in the same frame; past 2 x `maxAge`
// frames, always). So the label shown for a face always comes from classifications of that face
// made less than 2 x `maxAge` frames ago.

import { iou } from "./tracker.js";

export const REUSE = { minIou: 0.8, maxAge: 6, refreshPerFrame: 1 };

/** The classifications of the faces in the last planned frame, reused by the next frames. */
export class RecentClassifications {
  constructor({ minIou, maxAge, refreshPerFrame } = REUSE) {
    Object.assign(this, { minIou, maxAge, refreshPerFrame });
    this.entries = []; // {box, frame, probabilities} (probabilities null until the answer is in)
    this.frame = 0;
  }

  /**
   * Plan a frame with these face boxes: {entries, classify}. `entries[i]` is face i's
   * classification (shared with earlier frames when reused); `classify` lists the faces to
   * classify now, whose answers go to `fill`. Faces of earlier frames that this frame no longer
   * has are forgotten.
   */
  plan(boxes) {
    const frame = ++this.frame;
    const free = new Set(this.entries);
    const matched = boxes.map((box) => {
      let best = null;
      let bestIou = this.minIou;
      for (const entry of free) {
        const overlap = iou(box, entry.box);
        if (overlap >= bestIou) {
          best = entry;
          bestIou = overlap;
        }
      }
      free.delete(best);
      return best;
    });
    matched
      .map((entry, i) => [entry, i])
      .filter(([entry]) => entry && frame - entry.frame >= this.maxAge)
      .sort((a, b) => a[0].frame - b[0].frame)
      .filter(([entry], rank) => rank < this.refreshPerFrame || frame - entry.frame >= 2 * this.maxAge)
      .forEach(([, i]) => (matched[i] = null));
    const classify = [];
    const entries = matched.map((entry, i) => {
      if (entry) return entry;
      classify.push(i);
      return { box: boxes[i], frame, probabilities: null };
    });
    this.entries = entries;
    return { entries, classify };
  }

  /** A planned frame's answers: `rows[j]` (class probabilities) for face `classify[j]`. */
  static fill({ entries, classify }, rows) {
    classify.forEach((face, j) => (entries[face].probabilities = rows[j]));
  }
}
