// Which faces of a camera frame the mask classifier must see. A face that has neither moved nor
// changed size since it was last classified, a few frames ago, is not classified again: it takes
// the probabilities of that recent classification. With a few still faces in front of the
// camera, that turns three classifications a frame into about one every other frame, the page's
// largest cost. A face is classified again when it is new, when its box moved or changed enough
// (box IoU with the box it was classified at below `minIou`), and when its classification is
// `maxAge` frames old (at most `refreshPerFrame` such refreshes a frame, the oldest first, so
// that faces seen together are not all classified again in the same frame; past 2 x `maxAge`
// frames, always). Age refreshes wait while the classifier is busy (`refresh: false`), and a
// face being refreshed keeps its previous answer (`fallback`) until the new one is in, so that
// the page never waits for a refresh; it waits only for new and moved faces. So the label shown
// for a face always comes from classifications of that same face, made less than 2 x `maxAge`
// frames ago or replaced by one on its way.

import { iou } from "./tracker.js";

export const REUSE = { minIou: 0.8, maxAge: 6, refreshPerFrame: 1 };

/** The classifications of the faces in the last planned frame, reused by the next frames. */
export class RecentClassifications {
  constructor({ minIou, maxAge, refreshPerFrame } = REUSE) {
    Object.assign(this, { minIou, maxAge, refreshPerFrame });
    // {box, frame, probabilities, fallback}: probabilities null until the answer is in;
    // fallback: for a refresh, the answer it replaces
    this.entries = [];
    this.frame = 0;
  }

  /**
   * Plan a frame with these face boxes: {entries, classify}. `entries[i]` is face i's
   * classification (shared with earlier frames when reused); `classify` lists the faces to
   * classify now, whose answers go to `fill`. Faces of earlier frames that this frame no longer
   * has are forgotten. With `refresh` false, faces are classified again for their age only
   * past 2 x maxAge frames.
   */
  plan(boxes, { refresh = true } = {}) {
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
      .filter(([entry], rank) =>
        (refresh && rank < this.refreshPerFrame) || frame - entry.frame >= 2 * this.maxAge)
      .forEach(([entry, i]) => (matched[i] = { old: entry }));
    const classify = [];
    const entries = matched.map((entry, i) => {
      if (entry && !entry.old) return entry;
      classify.push(i);
      const fallback = entry ? RecentClassifications.answer(entry.old) : null;
      return { box: boxes[i], frame, probabilities: null, fallback };
    });
    this.entries = entries;
    return { entries, classify };
  }

  /** The probabilities to use for a face's entry now: its own answer, else the one its refresh
   * replaces, else null (the answer is on its way). */
  static answer(entry) {
    return entry.probabilities ?? entry.fallback ?? null;
  }

  /** A planned frame's answers: `rows[j]` (class probabilities) for face `classify[j]`. */
  static fill({ entries, classify }, rows) {
    classify.forEach((face, j) => (entries[face].probabilities = rows[j]));
  }
}
