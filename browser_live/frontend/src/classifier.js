// The mask classifier (TF.js), run in a Web Worker so that classifying one frame's faces
// overlaps detecting the next frame's (BlazeFace on TF.js, on the page's own thread).
//
// Messages in:  {id, type: "load", modelUrl, wasm: {file name: URL}, inputSize}
//               {id, type: "classify", pixels: Float32Array (N x S x S x 3), count}
// Messages out: {id, backend} | {id, probabilities: Float32Array, ms} | {id, error}

import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import "@tensorflow/tfjs-backend-webgl";
import * as tf from "@tensorflow/tfjs-core";

import { loadFolded } from "./fuse.js";

let model = null;
let size = 0;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

/** A real GPU (not a software renderer such as SwiftShader) behind WebGL2 in this worker. */
function hardwareWebGL() {
  try {
    const gl = new OffscreenCanvas(1, 1).getContext("webgl2");
    if (!gl) return false;
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    return !/swiftshader|llvmpipe|software|basic render/i.test(renderer);
  } catch {
    return false;
  }
}

/** Use WebGL when the GPU is real and it beats WASM on a crop; else WASM (SIMD). */
async function chooseBackend() {
  const probe = tf.zeros([1, size, size, 3]);
  const timings = {};
  for (const name of hardwareWebGL() ? ["wasm", "webgl"] : ["wasm"]) {
    if (!(await tf.setBackend(name).catch(() => false))) continue;
    const times = [];
    for (let i = 0; i < 4; i++) {
      const start = performance.now();
      const out = model.predict(probe);
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

async function handle(message) {
  if (message.type === "load") {
    setWasmPaths(message.wasm);
    await tf.setBackend("wasm"); // weights load onto a backend; chooseBackend may move them
    model?.dispose();
    model = await loadFolded(message.modelUrl);
    size = message.inputSize;
    return { backend: await chooseBackend() };
  }
  const start = performance.now();
  const input = tf.tensor4d(message.pixels, [message.count, size, size, 3], "float32");
  const output = model.predict(input);
  const probabilities = await output.data();
  input.dispose();
  output.dispose();
  return { probabilities, ms: performance.now() - start };
}

self.onmessage = async ({ data }) => {
  try {
    self.postMessage({ id: data.id, ...(await handle(data)) });
  } catch (error) {
    self.postMessage({ id: data.id, error: error?.message || String(error) });
  }
};
