// Build the "Live in your browser" component into ./build (served by Streamlit as static files).
//
// Usage: node browser_live/frontend/build.mjs   (from the repository root; `make browser` runs it)
// Bundles src/main.js (the page) and src/classifier.js (its TF.js worker) with esbuild and copies what the page loads at run time, so that nothing
// comes from outside the app: the MediaPipe Tasks and TF.js WebAssembly files (from node_modules,
// versions pinned in package-lock.json) and the package's own BlazeFace short-range model.

import { copyFileSync, mkdirSync, rmSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const modules = path.join(repo, "node_modules");
const out = path.join(here, "build");
const staging = path.join(here, ".build-staging");

const COPIES = {
  "mediapipe/vision_wasm_internal.js": "@mediapipe/tasks-vision/wasm/vision_wasm_internal.js",
  "mediapipe/vision_wasm_internal.wasm": "@mediapipe/tasks-vision/wasm/vision_wasm_internal.wasm",
  "mediapipe/vision_wasm_nosimd_internal.js":
    "@mediapipe/tasks-vision/wasm/vision_wasm_nosimd_internal.js",
  "mediapipe/vision_wasm_nosimd_internal.wasm":
    "@mediapipe/tasks-vision/wasm/vision_wasm_nosimd_internal.wasm",
  "tfjs/tfjs-backend-wasm.wasm": "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm",
  "tfjs/tfjs-backend-wasm-simd.wasm":
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm",
  "tfjs/tfjs-backend-wasm-threaded-simd.wasm":
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm",
};
const DETECTOR = path.join(repo, "facemask", "assets", "face_detection_short_range.tflite");

rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
await build({
  entryPoints: [path.join(here, "src", "main.js"), path.join(here, "src", "classifier.js")],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  outdir: staging,
  logLevel: "warning",
  legalComments: "linked",
});
for (const [target, source] of Object.entries(COPIES)) {
  mkdirSync(path.dirname(path.join(staging, target)), { recursive: true });
  copyFileSync(path.join(modules, source), path.join(staging, target));
}
mkdirSync(path.join(staging, "models"), { recursive: true });
copyFileSync(DETECTOR, path.join(staging, "models", "face_detection_short_range.tflite"));
copyFileSync(path.join(here, "index.html"), path.join(staging, "index.html"));
copyFileSync(path.join(here, "style.css"), path.join(staging, "style.css"));
copyFileSync(path.join(here, "check.js"), path.join(staging, "check.js"));
writeFileSync(path.join(staging, "BUILT"), `${new Date().toISOString()}\n`);
rmSync(out, { recursive: true, force: true });
renameSync(staging, out);
console.log(`built ${path.relative(repo, out)}`);
