// Run a TF.js graph model from disk on face crops, with real TF.js: its WebAssembly backend
// (what browsers run; @tensorflow/tfjs-backend-wasm) when installed, else the pure-JS CPU one.
//
// Usage: node run_tfjs.mjs '{"model": DIR, "input": FILE, "dtype": "uint8"|"float32",
//                             "shape": [N, S, S, 3], "batch": 16}'
// FILE holds the crops as raw little-endian values, row-major. Prints one JSON object to stdout:
// {"probabilities": [[...], ...], "ms_per_crop", "backend", "tfjs_version", "inputs", "outputs"}.
// On failure prints {"error": "..."} and exits 1. @tensorflow/tfjs is looked up from NODE_PATH,
// the working directory, and the folders above this script (tfjs-node is not needed).

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

const require = createRequire(import.meta.url);
const bases = [
  ...(process.env.NODE_PATH || "").split(path.delimiter).filter(Boolean),
  process.cwd(),
  here,
];

function loadTfjs() {
  return require(require.resolve("@tensorflow/tfjs", { paths: bases }));
}

/** Register TF.js's WebAssembly backend if its package is installed; true when it is. */
function loadWasmBackend() {
  try {
    require(require.resolve("@tensorflow/tfjs-backend-wasm", { paths: bases }));
    return true;
  } catch {
    return false;
  }
}

function fail(message) {
  process.stdout.write(JSON.stringify({ error: message }) + "\n");
  process.exit(1);
}

/** A load-only IO handler: model.json plus its weight shards, all inside modelDir. */
function fileHandler(tf, modelDir) {
  return {
    load: async () => {
      const modelJSON = JSON.parse(readFileSync(path.join(modelDir, "model.json"), "utf8"));
      return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
        const buffers = [];
        for (const group of manifest) {
          for (const shard of group.paths) {
            const file = path.resolve(modelDir, shard);
            if (path.dirname(file) !== path.resolve(modelDir)) {
              throw new Error(`weight shard ${shard} is outside the model folder`);
            }
            const bytes = readFileSync(file);
            buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
          }
        }
        return [tf.io.getWeightSpecs(manifest), tf.io.concatenateArrayBuffers(buffers)];
      });
    },
  };
}

function readCrops(file, dtype, shape) {
  const bytes = readFileSync(file);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
  const values = dtype === "uint8" ? new Uint8Array(buffer) : new Float32Array(buffer);
  const expected = shape.reduce((a, b) => a * b, 1);
  if (values.length !== expected) {
    throw new Error(`${file} holds ${values.length} values, shape ${shape} needs ${expected}`);
  }
  return values;
}

async function main() {
  let args;
  try {
    args = JSON.parse(process.argv[2] || "");
  } catch {
    fail("expected one JSON argument: {model, input, dtype, shape}");
  }
  const { model: modelDir, input, dtype = "float32", shape, batch = 16 } = args;
  if (!["uint8", "float32"].includes(dtype)) fail(`dtype must be uint8 or float32, not ${dtype}`);
  if (!Array.isArray(shape) || shape.length !== 4) fail("shape must be [N, S, S, 3]");

  const tf = loadTfjs();
  tf.enableProdMode(); // no debug checks, no "install tfjs-node" notice
  const wasm = loadWasmBackend() && (await tf.setBackend("wasm").catch(() => false));
  if (!wasm) await tf.setBackend("cpu");
  await tf.ready();

  const model = await tf.loadGraphModel(fileHandler(tf, modelDir));
  const values = readCrops(input, dtype, shape);
  const [n, ...crop] = shape;
  const perCrop = crop.reduce((a, b) => a * b, 1);

  const run = (start, count) =>
    tf.tidy(() => {
      const slice = values.subarray(start * perCrop, (start + count) * perCrop);
      const x = tf.tensor(Float32Array.from(slice), [count, ...crop], "float32");
      let y = model.predict(x);
      if (Array.isArray(y)) y = y[0];
      else if (!(y instanceof tf.Tensor)) y = Object.values(y)[0];
      return y.arraySync();
    });

  if (n > 0) run(0, 1); // warm-up: the first call compiles kernels and uploads weights
  const probabilities = [];
  const t0 = performance.now();
  for (let start = 0; start < n; start += batch) {
    probabilities.push(...run(start, Math.min(batch, n - start)));
  }
  const ms = performance.now() - t0;
  process.stdout.write(
    JSON.stringify({
      probabilities,
      ms_per_crop: n > 0 ? ms / n : null,
      backend: tf.getBackend(),
      tfjs_version: tf.version.tfjs,
      inputs: model.inputs.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype })),
      outputs: model.outputs.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype })),
    }) + "\n",
  );
}

main().catch((err) => fail(String(err && err.message ? err.message : err)));
