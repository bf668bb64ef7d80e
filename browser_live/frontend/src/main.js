// "Live in your browser": the webcam, the face detector and the mask classifier all run in this
// page, on one runtime (TF.js, WebAssembly). The detector is the package's BlazeFace .tflite, read
// by tflite.js and decoded by faces.js as facemask.detect does; it runs on this thread. The chosen
// model's TF.js export runs in Web Workers (classifier.js), so classifying frame k overlaps
// detecting frame k + 1; with two cores or more, two workers share each frame's faces. Only new
// and moved faces are classified each frame, and each still face every few frames (reuse.js):
// the page waits for the classifier only for a new or moved face. Every file
// comes from the app itself (see index.html's CSP), under a content-hashed name listed in
// index.html's asset manifest.

import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs-core";

import { cropFaces } from "./crop.js";
import { drawDetections, drawLegend } from "./draw.js";
import { createDetector } from "./detector.js";
import { MESSAGES, cameraMessage } from "./messages.js";
import { RecentClassifications } from "./reuse.js";
import { connect, setFrameHeight } from "./streamlit.js";
import { FaceTracker, decide } from "./tracker.js";

const WINDOW = 30; // frames in the rolling FPS and median ms
const CLASSIFIER_WORKERS = (navigator.hardwareConcurrency || 1) >= 2 ? 2 : 1;
const $ = (id) => document.getElementById(id);
const ui = {
  start: $("start"), stop: $("stop"), video: $("video"), overlay: $("overlay"),
  status: $("status"), message: $("message"), stage: $("stage"),
};
const grab = document.createElement("canvas"); // the current frame, read by both models
const grabContext = grab.getContext("2d", { willReadFrequently: true });

let args = null; // the latest component args from Python
let models = null; // Promise<{detector, classifier, backend}>
let modelsKey = "";
let stream = null;
let tracker = null;
let recent = null; // the faces' recent classifications, reused while a face stays put (reuse.js)
let running = false;
const history = { stamps: [], detect: [], classify: [], crop: [], classified: [] };
let cropMs = 0; // of the last classify(): reading pixels back and cutting the crops
let busy = 0; // classifier calls on their way
let failure = null; // a classifier call that failed while nobody waited for it

window.facemaskStats = emptyStats();

function emptyStats() {
  return {
    frames: 0, fps: 0, backend: "", detectMs: 0, classifyMs: 0, classified: 0, faces: [], running: false,
  };
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

function mean(values) {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0;
}

function push(list, value) {
  list.push(value);
  if (list.length > WINDOW) list.shift();
}

/** The classifier worker, behind promises: call(message, transfer) -> its answer. */
function classifierWorker(url) {
  const worker = new Worker(url, { type: "module" });
  const pending = new Map();
  let next = 0;
  worker.onmessage = ({ data }) => {
    const { resolve, reject } = pending.get(data.id);
    pending.delete(data.id);
    if (data.error) reject(new Error(data.error));
    else resolve(data);
  };
  return {
    call(message, transfer = []) {
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ ...message, id }, transfer);
      });
    },
    /** Stop the worker; calls still waiting fail with an error marked `replaced`. */
    terminate() {
      worker.terminate();
      for (const { reject } of pending.values()) {
        reject(Object.assign(new Error("the model was replaced"), { replaced: true }));
      }
      pending.clear();
    },
  };
}

/** The build's content-hashed files as URLs, from index.html's manifest (build.mjs writes it):
 * {classifier, detector, wasm: {TF.js wasm file name: URL}}. */
function assets() {
  const base = new URL(".", window.location.href);
  const resolve = (value) => typeof value === "string"
    ? new URL(value, base).href
    : Object.fromEntries(Object.entries(value).map(([name, file]) => [name, resolve(file)]));
  return resolve(JSON.parse(document.querySelector('meta[name="facemask-assets"]').content));
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${new URL(url).pathname}`);
  return response.arrayBuffer();
}

/** BlazeFace on this thread's TF.js (WebAssembly): detector.js's detect(frame, options). */
async function loadDetector(files) {
  setWasmPaths(files.wasm);
  if (!(await tf.setBackend("wasm"))) throw new Error("TF.js could not start WebAssembly");
  const detector = createDetector(tf, await fetchBytes(files.detector));
  const still = { data: new Uint8ClampedArray(4 * 64 * 48), width: 64, height: 48 };
  detector.detect(still, { minScore: 1, nmsIou: 0.3, minFace: 0 }); // the first run compiles
  return detector;
}

async function loadModels(a) {
  const files = assets();
  const detector = await loadDetector(files);
  const load = {
    type: "load",
    modelUrl: new URL(a.modelUrl, window.location.href).href,
    wasm: files.wasm,
    inputSize: a.inputSize,
  };
  // One after the other: the second worker finds every file in the browser's cache.
  const workers = [];
  let backend = "";
  for (let i = 0; i < CLASSIFIER_WORKERS; i++) {
    const worker = classifierWorker(files.classifier);
    workers.push(worker);
    ({ backend } = await worker.call(load));
  }
  const classifier = {
    workers,
    terminate: () => workers.forEach((w) => w.terminate()),
  };
  return { detector, classifier, backend };
}

/** (Re)load the models when the chosen model changes. */
function ensureModels(a) {
  const key = `${a.modelUrl}`;
  if (key !== modelsKey) {
    modelsKey = key;
    const previous = models;
    const loading = (previous ? previous.catch(() => null) : Promise.resolve(null)).then((old) => {
      old?.classifier.terminate(); // the detector's TF.js is this thread's: one at a time
      old?.detector.close();
      return loadModels(a);
    }).catch((error) => {
      throw Object.assign(error instanceof Error ? error : new Error(String(error)), { loading: true });
    });
    models = loading;
    loading.catch((error) => showMessage(MESSAGES.modelFailed(error.message)));
  }
  return models;
}

/** Faces in pixels, clipped to the frame, filtered by size: facemask.detect's WEBCAM preset. */
function findFaces(detector, frame) {
  return detector.detect(frame, { minScore: args.minScore, nmsIou: args.nmsIou, minFace: args.minFace });
}

/** Cut the faces' crops (raw RGB) for the classifier: Float32Array or null. */
function crops([frame, origin], faces, start) {
  if (!faces.length) return null;
  const pixels = cropFaces(frame, faces.map((f) => f.box), args.inputSize, args.margin, origin);
  cropMs = performance.now() - start;
  return pixels;
}

/** Class probabilities for each face, the faces shared between the workers (one batch each):
 * {probabilities: [[p]], ms} (ms: the slowest worker's). */
async function classify(classifier, pixels, count) {
  if (!count) return { probabilities: [], ms: 0 };
  const { workers } = classifier;
  const per = pixels.length / count;
  const shares = Math.min(workers.length, count);
  const answers = await Promise.all(
    Array.from({ length: shares }, (_, w) => {
      const first = Math.round((w * count) / shares);
      const last = Math.round(((w + 1) * count) / shares);
      const part = shares === 1 ? pixels : pixels.slice(first * per, last * per);
      return workers[w].call({ type: "classify", pixels: part, count: last - first }, [part.buffer]);
    }),
  );
  const n = args.labels.length;
  const rows = [];
  for (const { probabilities } of answers) {
    for (let i = 0; i < probabilities.length; i += n) rows.push(Array.from(probabilities.slice(i, i + n)));
  }
  return { probabilities: rows, ms: Math.max(...answers.map((a) => a.ms)) };
}

/** A fresh tracker and reuse plan: at Start and whenever the model or the settings change. */
function resetTracking() {
  tracker = new FaceTracker(args.tracker, args.labels, args.thresholds);
  recent = new RecentClassifications();
}

/** Detect the faces of the current camera frame and cut the crops of those to classify now
 * (reuse.js decides which; it refreshes a still face only when the classifier is idle): this
 * thread. */
function detectFrame(m) {
  const { video } = ui;
  const width = video.videoWidth;
  const height = video.videoHeight;
  if (!width || !height) return null;
  if (grab.width !== width || grab.height !== height) {
    grab.width = width;
    grab.height = height;
  }
  const t0 = performance.now();
  grabContext.drawImage(video, 0, 0, width, height);
  const image = grabContext.getImageData(0, 0, width, height);
  const faces = findFaces(m.detector, image);
  const t1 = performance.now();
  const plan = recent.plan(faces.map((f) => f.box), { refresh: busy === 0 });
  const pixels = crops([image, [0, 0]], plan.classify.map((i) => faces[i]), t1);
  const count = plan.classify.length;
  return { faces, plan, count, pixels, width, height, detectMs: t1 - t0, cropMs: count ? cropMs : 0 };
}

/** Send a frame's crops to the classifier; its answers fill the frame's reuse entries (and
 * those of later frames that reuse them). Nobody waits here: see answered(). */
function submit(m, frame) {
  if (!frame.count) return;
  busy += 1;
  const job = classify(m.classifier, frame.pixels, frame.count)
    .then(({ probabilities, ms }) => {
      RecentClassifications.fill(frame.plan, probabilities);
      push(history.classify, frame.cropMs + ms);
      push(history.crop, frame.cropMs);
    })
    .finally(() => (busy -= 1));
  job.catch((error) => {
    if (!error?.replaced) failure ??= error;
  });
  for (const i of frame.plan.classify) frame.plan.entries[i].job = job;
}

/** Resolves when every face of the frame has probabilities: at once unless a face is new or
 * moved and its classification is still on its way (a refresh has its previous answer). */
function answered(frame) {
  const waiting = frame.plan.entries.filter((e) => !RecentClassifications.answer(e));
  return Promise.all(waiting.map((e) => e.job));
}

/** Every face of a frame has probabilities: smooth, draw, and update the stats. */
function finishFrame(m, frame) {
  const detections = tracker.update(
    frame.faces.map((f, i) => ({ ...f, probabilities: RecentClassifications.answer(frame.plan.entries[i]) })),
  );
  draw(detections, frame.width, frame.height);
  push(history.stamps, performance.now());
  push(history.detect, frame.detectMs);
  push(history.classified, frame.count);
  const span = (history.stamps.at(-1) - history.stamps[0]) / 1000;
  const stats = window.facemaskStats;
  Object.assign(stats, {
    frames: stats.frames + 1,
    fps: span > 0 ? (history.stamps.length - 1) / span : 0,
    backend: m.backend,
    detectMs: median(history.detect),
    classifyMs: mean(history.classify), // a classifier call: cutting the crops, then the model
    cropMs: mean(history.crop), // part of classifyMs
    classified: mean(history.classified), // faces classified per frame (the others reuse)
    faces: detections.map((d) => ({
      box: d.box, label: d.label, confidence: d.confidence, trackId: d.trackId,
    })),
    running: true,
  });
  ui.status.textContent =
    `${stats.fps.toFixed(1)} FPS · detect ${stats.detectMs.toFixed(1)} ms · classify ` +
    `${stats.classifyMs.toFixed(1)} ms a call, ${stats.classified.toFixed(1)} faces a frame · TF.js ${m.backend} · ` +
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
  drawDetections(ctx, detections, width, height, args);
  drawLegend(ctx, args.labels, width, height, args); // which colour is which label, as annotate
}

/**
 * Process the newest camera frame, again and again: right after a frame is done when a newer
 * one arrived meanwhile (no waiting for the next one), else as soon as the next one arrives.
 * Frames that arrive while one is processed are skipped, never queued.
 */
let sessions = 0; // each Start begins a session; a loop from an earlier one ends

async function loop(initial) {
  let m = initial;
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
  let previous = null; // the frame detected last, finished once its faces have answers
  while (live()) {
    if (video.readyState < 2 || (video.requestVideoFrameCallback && presented === processed)) {
      await nextFrame();
      continue;
    }
    processed = presented;
    try {
      if (failure) throw failure;
      const current = await ensureModels(args); // the sidebar may have chosen another model
      if (!live()) break;
      if (current !== m) {
        m = current;
        previous = null;
        resetTracking();
        Object.assign(window.facemaskStats, { backend: m.backend });
      }
      const frame = detectFrame(m); // overlaps the worker classifying the previous frame
      if (frame) submit(m, frame);
      if (previous) {
        await answered(previous);
        if (!live()) break;
        finishFrame(m, previous);
      }
      previous = frame;
    } catch (error) {
      if (error?.replaced) {
        previous = null; // a frame for the model just replaced: drop it
        resetTracking();
        continue;
      }
      stop();
      if (!error?.loading) {
        showMessage(
          `The in-browser pipeline stopped on an error (${error?.message || error}): press Start to try again.`,
        );
      }
    }
  }
}

async function start() {
  showMessage("");
  if (!navigator.mediaDevices?.getUserMedia || !window.isSecureContext) {
    showMessage(args.messages.insecure);
    return;
  }
  ui.start.disabled = true;
  failure = null;
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    if (!devices.some((d) => d.kind === "videoinput")) throw Object.assign(new Error(), { name: "NotFoundError" });
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (error) {
    ui.start.disabled = false;
    showMessage(cameraMessage(error, args.messages));
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
  resetTracking();
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
  const faces = findFaces(m.detector, frame);
  const pixels = crops([frame, [0, 0]], faces, performance.now());
  const { probabilities } = await classify(m.classifier, pixels, faces.length);
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
  const { minScore, minFace, modelUrl, thresholds, labels } = args;
  window.facemaskSettings = { minScore, minFace, modelUrl, thresholds, labels };
  // the legend drawn on the video, for screen readers
  ui.overlay.setAttribute("aria-label", `Legend: ${labels.map((l) => args.labelText[l] || l).join(", ")}`);
  if (first) {
    if (typeof WebAssembly !== "object") return; // check.js has said why, and disabled Start
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) showMessage(args.messages.insecure);
    ui.status.textContent = "Loading the models…";
    ensureModels(args).then(
      (m) => { ui.status.textContent = `Models ready (TF.js ${m.backend}). Press Start.`; window.facemaskStats.backend = m.backend; },
      () => { ui.status.textContent = ""; },
    );
  } else {
    ensureModels(args).catch(() => {});
    if (tracker) resetTracking();
  }
  setFrameHeight();
}

ui.start.addEventListener("click", start);
ui.stop.addEventListener("click", stop);
ui.video.addEventListener("loadedmetadata", () => setFrameHeight());
new ResizeObserver(() => setFrameHeight()).observe(document.body);
connect(onRender);
