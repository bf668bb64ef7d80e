// Build the "Live in your browser" component into ./build (served by Streamlit as static files).
//
// Usage: node browser_live/frontend/build.mjs   (from the repository root; `make browser` runs it)
// Bundles src/main.js (the page) and src/classifier.js (its TF.js worker) with esbuild, sharing
// one TF.js chunk, and copies what the page loads at run time, so that nothing comes from outside
// the app: TF.js's WebAssembly files (from node_modules, versions pinned in package-lock.json) and
// the package's own BlazeFace short-range model. Every file but index.html carries a hash of its
// content in its name, so the server lets browsers keep it for good (browser_live.serving);
// index.html lists them in a manifest the page reads.

import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const modules = path.join(repo, "node_modules");
const out = path.join(here, "build");
const staging = path.join(here, ".build-staging");

const WASM = ["tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm", "tfjs-backend-wasm-threaded-simd.wasm"];
const DETECTOR = path.join(repo, "facemask", "assets", "face_detection_short_range.tflite");

/** Copy `source` into the staging folder as name-HASH.ext; return the new name. */
function hashed(source, name = path.basename(source)) {
  const bytes = readFileSync(source);
  const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 12);
  const ext = path.extname(name);
  const target = `${path.basename(name, ext)}-${hash}${ext}`;
  writeFileSync(path.join(staging, target), bytes);
  return target;
}

rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
const result = await build({
  entryPoints: [path.join(here, "src", "main.js"), path.join(here, "src", "classifier.js")],
  bundle: true,
  splitting: true,
  minify: true,
  format: "esm",
  target: "es2020",
  outdir: staging,
  entryNames: "[name]-[hash]",
  chunkNames: "shared-[hash]",
  metafile: true,
  logLevel: "warning",
  legalComments: "linked",
});
const entries = {};
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  if (output.entryPoint) entries[path.basename(output.entryPoint, ".js")] = path.basename(file);
}
const manifest = {
  classifier: entries.classifier,
  detector: hashed(DETECTOR),
  wasm: Object.fromEntries(
    WASM.map((name) => [name, hashed(path.join(modules, "@tensorflow/tfjs-backend-wasm/dist", name))]),
  ),
};
const html = readFileSync(path.join(here, "index.html"), "utf8")
  .replace('href="style.css"', `href="${hashed(path.join(here, "style.css"))}"`)
  .replace('src="main.js"', `src="${entries.main}"`)
  .replace('src="check.js"', `src="${hashed(path.join(here, "check.js"))}"`)
  .replace('content="{}"', `content='${JSON.stringify(manifest)}'`);
writeFileSync(path.join(staging, "index.html"), html);
writeFileSync(path.join(staging, "BUILT"), `${new Date().toISOString()}\n`);
rmSync(out, { recursive: true, force: true });
renameSync(staging, out);
console.log(`built ${path.relative(repo, out)}`);
