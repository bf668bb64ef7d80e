// Fewer, fused ops for a TF.js graph model, before TF.js loads it. The converter leaves each
// depthwise convolution of a Keras MobileNetV2 as four ops (DepthwiseConv2dNative, the batch
// norm's Mul and AddV2, Relu6); TF.js runs one fused op instead when the scale is folded into
// the filter. In TF.js under WebAssembly, each op costs about as much as its arithmetic here, so
// this makes a frame's classification markedly cheaper; the answers stay the same (a test
// compares them).

import { loadGraphModel } from "@tensorflow/tfjs-converter";
import * as tf from "@tensorflow/tfjs-core";

const b64 = (text) => btoa(text);

/**
 * Fold `DepthwiseConv2dNative -> Mul(scale) -> AddV2(offset) -> Relu6` chains into one
 * FusedDepthwiseConv2dNative (BiasAdd, Relu6). `nodes`: the graph's node list (model.json's
 * modelTopology.node); `weights`: {name: {values: Float32Array, shape}} of its constants.
 * Returns {nodes, weights, folded} (new objects; the inputs are not changed).
 */
export function foldDepthwiseBatchNorm(nodes, weights) {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const consumers = new Map();
  for (const n of nodes) {
    for (const input of n.input || []) {
      const name = input.replace(/^\^/, "").split(":")[0];
      consumers.set(name, [...(consumers.get(name) || []), n.name]);
    }
  }
  const only = (name) => {
    const next = consumers.get(name) || [];
    return next.length === 1 ? byName.get(next[0]) : null;
  };
  const other = (node, name) => node.input.find((i) => i !== name);
  const out = { ...weights };
  const removed = new Set();
  const replaced = new Map();
  let folded = 0;
  for (const conv of nodes) {
    if (conv.op !== "DepthwiseConv2dNative" || conv.input.length !== 2) continue;
    const mul = only(conv.name);
    const add = mul?.op === "Mul" ? only(mul.name) : null;
    const relu = add?.op === "AddV2" ? only(add.name) : null;
    if (relu?.op !== "Relu6") continue;
    const filterName = conv.input[1];
    const scale = out[other(mul, conv.name)];
    const offset = out[other(add, mul.name)];
    const filter = out[filterName];
    if (!scale || !offset || !filter || (consumers.get(filterName) || []).length !== 1) continue;
    const channels = filter.shape[2];
    if (filter.shape[3] !== 1 || scale.values.length !== channels || offset.values.length !== channels) continue;
    const values = Float32Array.from(filter.values, (v, i) => v * scale.values[i % channels]);
    out[filterName] = { values, shape: filter.shape };
    replaced.set(relu.name, {
      name: relu.name,
      op: "FusedDepthwiseConv2dNative",
      input: [conv.input[0], filterName, other(add, mul.name)],
      device: conv.device,
      attr: {
        ...conv.attr,
        fused_ops: { list: { s: [b64("BiasAdd"), b64("Relu6")] } },
        num_args: { i: "1" },
      },
    });
    for (const n of [conv, mul, add]) removed.add(n.name);
    folded++;
  }
  const result = nodes.filter((n) => !removed.has(n.name)).map((n) => replaced.get(n.name) || n);
  return { nodes: result, weights: out, folded };
}

async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${new URL(url).pathname}`);
  return response;
}

/**
 * The graph model at `url` with its depthwise batch norms folded (fuse.js): model.json and the
 * shards are fetched here, the weights decoded, folded and handed to TF.js from memory.
 */
export async function loadFolded(url) {
  const json = await (await fetchOk(url)).json();
  const specs = [];
  const parts = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const path of group.paths) parts.push(new Uint8Array(await (await fetchOk(new URL(path, url))).arrayBuffer()));
  }
  const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (data.set(p, at), at + p.length), 0);
  const decoded = tf.io.decodeWeights(data.buffer, specs);
  const weights = Object.fromEntries(
    Object.entries(decoded).map(([name, t]) => [name, { values: t.dataSync(), shape: t.shape, dtype: t.dtype }]),
  );
  tf.dispose(Object.values(decoded));
  const fused = foldDepthwiseBatchNorm(json.modelTopology.node, weights);
  const named = Object.entries(fused.weights).map(([name, w]) => ({ name, tensor: tf.tensor(w.values, w.shape, w.dtype) }));
  const encoded = await tf.io.encodeWeights(named);
  tf.dispose(named.map((n) => n.tensor));
  return loadGraphModel(tf.io.fromMemory({
    ...json,
    modelTopology: { ...json.modelTopology, node: fused.nodes },
    weightSpecs: encoded.specs,
    weightData: encoded.data,
  }));
}
