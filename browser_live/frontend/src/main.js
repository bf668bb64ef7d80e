// "Live in your browser": the webcam, the face detector and the mask classifier all run in this
// page. MediaPipe Tasks runs the package's BlazeFace short-range model; TF.js runs the chosen
// model's TF.js export. Every file comes from the app itself (see index.html's CSP).

import { FaceDetector, FilesetResolver } from "@mediapipe/tasks-vision";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import "@tensorflow/tfjs-backend-webgl";
import { loadGraphModel } from "@tensorflow/tfjs-converter";
import * as tf from "@tensorflow/tfjs-core";

import { cropFaces, squareBox } from "./crop.js";
import { MESSAGES, cameraMessage } from "./messages.js";
import { connect, setFrameHeight } from "./streamlit.js";
import { FaceTracker, decide } from "./tracker.js";

const WINDOW = 30; // frames in the rolling FPS and median ms
const $ = (id) => document.getElementById(id);
const ui = {
  start: $("start"), stop: $("stop"), video: $("video"), overlay: $("overlay"),
  status: $("status"), message: $("message"), stage: $("stage"),
};
const grab = document.createElement("canvas"); // the current frame, read by both models
const grabContext = grab.getContext("2d", { willReadFrequently: true });

let args = null; // the latest component args from Python
let models = null; // Promise<{detector, imageDetector, classifier, backend}>
let modelsKey = "";
let stream = null;
let tracker = null;
let running = false;
const history = { stamps: [], detect: [], classify: [], crop: [] };
let cropMs = 0; // of the last classify(): reading pixels back and cutting the crops

window.facemaskStats = emptyStats();

function emptyStats() {
  return { frames: 0, fps: 0, backend: "", detectMs: 0, classifyMs: 0, faces: [], running: false };
}

function showMessage(text) {
  ui.message.textContent = text || "";
  ui.message.hidden = !text;
  setFrameHeight();
}

function median(values) {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function push(list, value) {
  list.push(value);
  if (list.length > WINDOW) list.shift();
}

/** Use WebGL when the GPU is real and it beats WASM on a crop batch; else WASM (SIMD). */
async function chooseBackend(classifier, size) {
  const probe = tf.zeros([1, size, size, 3]);
  const timings = {};
  for (const name of hardwareWebGL() ? ["wasm", "webgl"] : ["wasm"]) {
    if (!(await tf.setBackend(name))) continue;
    const times = [];
    for (let i = 0; i < 4; i++) {
      const start = performance.now();
      const out = classifier.predict(probe);
      await out.data();
      out.dispose();
      if (i > 0) times.push(performance.now() - start); // the first run compiles
    }
    timings[name] = median(times);
  }
  probe.dispose();
  const best = Object.keys(timings).sort((a, b) => timings[a] - timings[b])[0];
  await tf.setBackend(best);
  return best;
}

function hardwareWebGL() {
  try {
    const gl = document.createElement("canvas").getContext("webgl2");
    if (!gl) return false;
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    return !/swiftshader|llvmpipe|software|basic render/i.test(renderer);
  } catch {
    return false;
  }
}

async function loadModels(a) {
  const base = new URL(".", window.location.href);
  setWasmPaths(new URL("tfjs/", base).href);
  const fileset = await FilesetResolver.forVisionTasks(new URL("mediapipe", base).href);
  const detectorOptions = (mode) => ({
    baseOptions: { modelAssetPath: new URL("models/face_detection_short_range.tflite", base).href, delegate: "CPU" },
    runningMode: mode,
    minDetectionConfidence: a.minScore,
    minSuppressionThreshold: a.nmsIou,
  });
  const detector = await FaceDetector.createFromOptions(fileset, detectorOptions("VIDEO"));
  // Still pictures (facemaskAnalyze, for the tests) get their own IMAGE-mode detector, on use.
  let imageDetector = null;
  const stillDetector = async () => {
    imageDetector ??= FaceDetector.createFromOptions(fileset, detectorOptions("IMAGE"));
    return imageDetector;
  };
  await tf.setBackend("wasm"); // weights load onto a backend; chooseBackend may move them
  const classifier = await loadGraphModel(new URL(a.modelUrl, base).href);
  const backend = await chooseBackend(classifier, a.inputSize);
  return { detector, stillDetector, classifier, backend, minScore: a.minScore };
}

/** (Re)load the models when the chosen model changes; apply new detector thresholds. */
function ensureModels(a) {
  const key = `${a.modelUrl}`;
  if (key !== modelsKey) {
    modelsKey = key;
    const previous = models;
    models = loadModels(a);
    previous?.then((m) => m.classifier.dispose()).catch(() => {});
    models.catch((error) => showMessage(MESSAGES.modelFailed(error?.message || String(error))));
  }
  return models.then(async (m) => {
    if (m.minScore !== a.minScore) {
      m.minScore = a.minScore;
      await m.detector.setOptions({ minDetectionConfidence: a.minScore });
      await (await m.stillDetector()).setOptions({ minDetectionConfidence: a.minScore });
    }
    return m;
  });
}

/** Faces in pixels, clipped to the frame, filtered by size; as facemask.detect does. */
function findFaces(detector, source, width, height, timestamp) {
  const result = timestamp === undefined ? detector.detect(source) : detector.detectForVideo(source, timestamp);
  const faces = [];
  for (const d of result.detections) {
    const b = d.boundingBox;
    if (!b) continue;
    const clip = (v, hi) => Math.trunc(Math.min(Math.max(v, 0), hi));
    const box = [
      clip(b.originX, width), clip(b.originY, height),
      clip(b.originX + b.width, width), clip(b.originY + b.height, height),
    ];
    if (box[2] <= box[0] || box[3] <= box[1]) continue;
    if (Math.min(box[2] - box[0], box[3] - box[1]) < args.minFace) continue;
    faces.push({ box, score: Math.max(0, ...d.categories.map((c) => c.score)) });
  }
  return faces.sort((a, b) => b.score - a.score);
}

/** The frame's pixels, read back only over the faces' crop squares: [pixels, origin]. */
function readFaces(faces, width, height) {
  if (!faces.length) return [null, [0, 0]];
  const squares = faces.map((f) => squareBox(f.box, args.margin));
  const x0 = Math.max(0, Math.min(...squares.map((b) => b[0])));
  const y0 = Math.max(0, Math.min(...squares.map((b) => b[1])));
  const x1 = Math.min(width, Math.max(...squares.map((b) => b[2])));
  const y1 = Math.min(height, Math.max(...squares.map((b) => b[3])));
  const region = grabContext.getImageData(x0, y0, Math.max(1, x1 - x0), Math.max(1, y1 - y0));
  return [region, [x0, y0]];
}

/** Class probabilities for each face (one batch through the classifier). */
async function classify(classifier, [frame, origin], faces, start = performance.now()) {
  cropMs = 0;
  if (!faces.length) return [];
  const size = args.inputSize;
  const pixels = cropFaces(frame, faces.map((f) => f.box), size, args.margin, origin);
  cropMs = performance.now() - start;
  const input = tf.tensor4d(pixels, [faces.length, size, size, 3], "float32");
  const output = classifier.predict(input);
  const values = await output.data();
  input.dispose();
  output.dispose();
  const n = args.labels.length;
  return faces.map((_, i) => Array.from(values.slice(i * n, (i + 1) * n)));
}

async function processFrame(m, live) {
  const { video } = ui;
  const width = video.videoWidth;
  const height = video.videoHeight;
  if (!width || !height) return;
  if (grab.width !== width || grab.height !== height) {
    grab.width = width;
    grab.height = height;
  }
  const t0 = performance.now();
  grabContext.drawImage(video, 0, 0, width, height);
  const faces = findFaces(m.detector, grab, width, height, t0);
  const t1 = performance.now();
  const probabilities = await classify(m.classifier, readFaces(faces, width, height), faces, t1);
  const t2 = performance.now();
  if (!live()) return;
  const detections = tracker.update(
    faces.map((f, i) => ({ ...f, probabilities: probabilities[i] })),
  );
  draw(detections, width, height);
  push(history.stamps, t2);
  push(history.detect, t1 - t0);
  push(history.classify, t2 - t1);
  push(history.crop, cropMs);
  const span = (history.stamps.at(-1) - history.stamps[0]) / 1000;
  const stats = window.facemaskStats;
  Object.assign(stats, {
    frames: stats.frames + 1,
    fps: span > 0 ? (history.stamps.length - 1) / span : 0,
    backend: m.backend,
    detectMs: median(history.detect),
    classifyMs: median(history.classify),
    cropMs: median(history.crop), // part of classifyMs
    faces: detections.map((d) => ({
      box: d.box, label: d.label, confidence: d.confidence, trackId: d.trackId,
    })),
    running: true,
  });
  ui.status.textContent =
    `${stats.fps.toFixed(1)} FPS · detect ${stats.detectMs.toFixed(1)} ms · classify ` +
    `${stats.classifyMs.toFixed(1)} ms per frame · TF.js ${m.backend} · ` +
    `${detections.length} face${detections.length === 1 ? "" : "s"}`;
}

function draw(detections, width, height) {
  const canvas = ui.overlay;
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  const scale = Math.max(0.45, Math.min(1.2, width / 900));
  const thickness = Math.max(1, Math.round(scale * 2));
  ctx.font = `${Math.round(26 * scale)}px sans-serif`;
  ctx.textBaseline = "top";
  for (const d of detections) {
    const [x1, y1, x2, y2] = d.box;
    const [r, g, b] = args.colors[d.label] || args.fallbackColor;
    const color = `rgb(${r}, ${g}, ${b})`;
    ctx.strokeStyle = color;
    ctx.lineWidth = thickness;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = `${args.labelText[d.label] || d.label} ${Math.round(d.confidence * 100)}%`;
    const tw = ctx.measureText(text).width;
    const th = Math.round(30 * scale);
    const ty = y1 - th >= 0 ? y1 - th : Math.min(y2 + 2, height - th);
    ctx.fillStyle = color;
    ctx.fillRect(x1, ty, tw + 8, th);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, x1 + 4, ty + 2);
  }
}

/**
 * Process the newest camera frame, again and again: right after a frame is done when a newer
 * one arrived meanwhile (no waiting for the next one), else as soon as the next one arrives.
 * Frames that arrive while one is processed are skipped, never queued.
 */
let sessions = 0; // each Start begins a session; a loop from an earlier one ends

async function loop(m) {
  const { video } = ui;
  const session = ++sessions;
  const live = () => running && session === sessions;
  let presented = 0; // camera frames shown so far
  let wake = null;
  const watch = (_, metadata) => {
    presented = metadata.presentedFrames;
    wake?.();
    if (live()) video.requestVideoFrameCallback(watch);
  };
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(watch);
  const nextFrame = () =>
    video.requestVideoFrameCallback
      ? new Promise((resolve) => (wake = resolve))
      : new Promise((resolve) => requestAnimationFrame(resolve));
  let processed = -1;
  while (live()) {
    if (video.readyState < 2 || (video.requestVideoFrameCallback && presented === processed)) {
      await nextFrame();
      continue;
    }
    processed = presented;
    try {
      await processFrame(m, live);
    } catch (error) {
      stop();
      showMessage(
        `The in-browser pipeline stopped on an error (${error?.message || error}): press Start to try again.`,
      );
    }
  }
}

async function start() {
  showMessage("");
  if (!navigator.mediaDevices?.getUserMedia || !window.isSecureContext) {
    showMessage(MESSAGES.insecure);
    return;
  }
  ui.start.disabled = true;
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    if (!devices.some((d) => d.kind === "videoinput")) throw Object.assign(new Error(), { name: "NotFoundError" });
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (error) {
    ui.start.disabled = false;
    showMessage(cameraMessage(error));
    return;
  }
  ui.video.srcObject = stream;
  await ui.video.play().catch(() => {});
  running = true;
  ui.start.hidden = true;
  ui.start.disabled = false;
  ui.stop.hidden = false;
  setFrameHeight();
  let m;
  try {
    m = await ensureModels(args);
  } catch {
    stop();
    return; // the message is already shown
  }
  if (!running) return;
  tracker = new FaceTracker(args.tracker, args.labels, args.thresholds);
  for (const list of Object.values(history)) list.length = 0;
  Object.assign(window.facemaskStats, emptyStats(), { backend: m.backend, running: true });
  loop(m);
}

function stop() {
  running = false;
  stream?.getTracks().forEach((track) => track.stop());
  stream = null;
  ui.video.srcObject = null;
  ui.overlay.getContext("2d").clearRect(0, 0, ui.overlay.width, ui.overlay.height);
  window.facemaskStats.running = false;
  window.facemaskStats.faces = [];
  ui.stop.hidden = true;
  ui.start.hidden = false;
  ui.status.textContent = "Stopped.";
  setFrameHeight();
}

/**
 * Run detector + classifier on one still RGB picture, without smoothing (the tests compare
 * this with the Python pipeline): {width, height, rgb: base64 of width*height*3 bytes}.
 */
window.facemaskAnalyze = async ({ width, height, rgb }) => {
  const m = await ensureModels(args);
  const bytes = Uint8Array.from(atob(rgb), (c) => c.charCodeAt(0));
  const frame = new ImageData(width, height);
  for (let i = 0, j = 0; i < bytes.length; i += 3, j += 4) {
    frame.data[j] = bytes[i];
    frame.data[j + 1] = bytes[i + 1];
    frame.data[j + 2] = bytes[i + 2];
    frame.data[j + 3] = 255;
  }
  const faces = findFaces(await m.stillDetector(), frame, width, height);
  const probabilities = await classify(m.classifier, [frame, [0, 0]], faces);
  return faces.map((f, i) => {
    const index = decide(probabilities[i], args.labels, args.thresholds);
    return {
      box: f.box, score: f.score, label: args.labels[index],
      confidence: probabilities[i][index], probabilities: probabilities[i],
    };
  });
};

function onRender(newArgs) {
  const first = args === null;
  args = newArgs;
  const { minScore, minFace, modelUrl, thresholds } = args;
  window.facemaskSettings = { minScore, minFace, modelUrl, thresholds };
  if (first) {
    if (typeof WebAssembly !== "object") {
      showMessage(MESSAGES.noWasm);
      ui.start.disabled = true;
      return;
    }
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) showMessage(MESSAGES.insecure);
    ui.status.textContent = "Loading the models…";
    ensureModels(args).then(
      (m) => { ui.status.textContent = `Models ready (TF.js ${m.backend}). Press Start.`; window.facemaskStats.backend = m.backend; },
      () => { ui.status.textContent = ""; },
    );
  } else {
    ensureModels(args).catch(() => {});
    if (tracker) tracker = new FaceTracker(args.tracker, args.labels, args.thresholds);
  }
  setFrameHeight();
}

ui.start.addEventListener("click", start);
ui.stop.addEventListener("click", stop);
ui.video.addEventListener("loadedmetadata", () => setFrameHeight());
new ResizeObserver(() => setFrameHeight()).observe(document.body);
connect(onRender);
