// The page's face detector: BlazeFace short range from the package's .tflite (tflite.js) on
// TF.js, with faces.js around it; facemask.detect.FaceDetector with the WEBCAM preset, in JS.

import { INPUT, decodeFaces, letterbox, ssdAnchors } from "./faces.js";
import { parseTFLite, tfliteRunner } from "./tflite.js";

/**
 * A detector for the .tflite file's bytes on a TF.js module `tf` (its backend already set):
 * {detect(frame, {minScore, nmsIou, minFace}) -> [{box, score}], close()}; frame: RGBA
 * {data, width, height}.
 */
export function createDetector(tf, modelBytes) {
  const net = tfliteRunner(tf, parseTFLite(modelBytes));
  const anchors = ssdAnchors();
  const [boxesAt, scoresAt] = ["regressors", "classificators"].map((n) => net.outputNames.indexOf(n));
  const detect = (frame, options) => {
    const box = letterbox(frame);
    const outputs = tf.tidy(() => net.run(tf.tensor4d(box.input, [1, INPUT, INPUT, 3])));
    const scores = outputs[scoresAt].dataSync();
    const regressors = outputs[boxesAt].dataSync();
    tf.dispose(outputs);
    const size = { width: frame.width, height: frame.height };
    return decodeFaces(scores, regressors, anchors, { ...box, ...size }, options);
  };
  return { detect, close: () => net.dispose() };
}
