// BlazeFace's .tflite file (the one facemask ships) run by TF.js: the FlatBuffer is read here and
// its few operators become TF.js ops, so one runtime (TF.js) runs both models on the page.
// Only what face_detection_short_range.tflite uses is supported; anything else is refused with
// its name, never guessed.

// TFLite schema (tensorflow/lite/schema/schema.fbs): the numbers of the fields and enums read here.
const OP = { ADD: 0, CONCATENATION: 2, CONV_2D: 3, DEPTHWISE_CONV_2D: 4, DEQUANTIZE: 6, MAX_POOL_2D: 17, RELU: 19, RESHAPE: 22, PAD: 34 };
const OP_NAME = Object.fromEntries(Object.entries(OP).map(([name, code]) => [code, name]));
const TYPE = { FLOAT32: 0, FLOAT16: 1, INT32: 2 };
const ACTIVATION = { 0: "linear", 1: "relu" };

/** A minimal FlatBuffer table reader over one ArrayBuffer. */
class Table {
  constructor(view, pos) {
    this.view = view;
    this.pos = pos;
    const vtable = pos - view.getInt32(pos, true);
    this.vtable = vtable;
    this.vsize = view.getUint16(vtable, true);
  }

  static root(buffer) {
    const view = new DataView(buffer);
    return new Table(view, view.getUint32(0, true));
  }

  field(i) {
    const at = 4 + 2 * i;
    const offset = at < this.vsize ? this.view.getUint16(this.vtable + at, true) : 0;
    return offset ? this.pos + offset : 0;
  }

  int(i, fallback = 0, size = 4) {
    const p = this.field(i);
    if (!p) return fallback;
    return size === 1 ? this.view.getUint8(p) : size === 2 ? this.view.getInt16(p, true) : this.view.getInt32(p, true);
  }

  table(i) {
    const p = this.field(i);
    return p ? new Table(this.view, p + this.view.getUint32(p, true)) : null;
  }

  /** [start, length] of a vector field. */
  vector(i) {
    const p = this.field(i);
    if (!p) return [0, 0];
    const start = p + this.view.getUint32(p, true);
    return [start + 4, this.view.getUint32(start, true)];
  }

  tables(i) {
    const [start, length] = this.vector(i);
    return Array.from({ length }, (_, k) => {
      const p = start + 4 * k;
      return new Table(this.view, p + this.view.getUint32(p, true));
    });
  }

  ints(i) {
    const [start, length] = this.vector(i);
    return Array.from({ length }, (_, k) => this.view.getInt32(start + 4 * k, true));
  }

  bytes(i) {
    const [start, length] = this.vector(i);
    return new Uint8Array(this.view.buffer, start, length);
  }

  string(i) {
    return new TextDecoder().decode(this.bytes(i));
  }
}

function float16(bits) {
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** A constant tensor's values as a typed array (float16 widened to float32). */
function constantValues(type, bytes) {
  const copy = bytes.slice().buffer; // aligned
  if (type === TYPE.FLOAT32) return new Float32Array(copy);
  if (type === TYPE.INT32) return new Int32Array(copy);
  if (type === TYPE.FLOAT16) return Float32Array.from(new Uint16Array(copy), float16);
  throw new Error(`tensor type ${type} is not supported`);
}

/**
 * Parse a .tflite file: {tensors: [{name, shape, type, data}], operators: [{op, inputs,
 * outputs, options}], inputs, outputs} (data: the constant's values, or null).
 */
export function parseTFLite(buffer) {
  const model = Table.root(buffer);
  const codes = model.tables(1).map((c) => Math.max(c.int(0, 0, 1), c.int(3)));
  const buffers = model.tables(4).map((b) => b.bytes(0));
  const [graph] = model.tables(2);
  const tensors = graph.tables(0).map((t) => {
    const type = t.int(1, 0, 1);
    const data = buffers[t.int(2)];
    return { name: t.string(3), shape: t.ints(0), type, data: data?.length ? constantValues(type, data) : null };
  });
  const operators = graph.tables(3).map((o) => {
    const code = codes[o.int(0)];
    if (!(code in OP_NAME)) throw new Error(`the detector model uses an unsupported operator (${code})`);
    const options = o.table(4);
    return { op: OP_NAME[code], inputs: o.ints(1), outputs: o.ints(2), options };
  });
  return { tensors, operators, inputs: graph.ints(1), outputs: graph.ints(2) };
}

const padding = (options) => (options.int(0, 0, 1) === 0 ? "same" : "valid");

/**
 * A TF.js function for a parsed model: run(input) -> the model's outputs in order (tensors the
 * caller disposes). Weights become TF.js tensors once (kept until dispose()).
 */
export function tfliteRunner(tf, parsed) {
  const { tensors, operators } = parsed;
  const constants = new Map();
  const constant = (index) => {
    if (!constants.has(index)) {
      const t = tensors[index];
      constants.set(index, tf.tensor(t.data, t.shape, t.type === TYPE.INT32 ? "int32" : "float32"));
    }
    return constants.get(index);
  };
  // Dequantized float16 constants are plain float32 constants here: DEQUANTIZE becomes an alias.
  const alias = new Map();
  const steps = [];
  for (const op of operators) {
    if (op.op === "DEQUANTIZE") {
      alias.set(op.outputs[0], op.inputs[0]);
      continue;
    }
    steps.push(op);
  }
  const source = (index) => alias.get(index) ?? index;
  // Filters in TF.js layouts, prepared once.
  for (const step of steps) {
    const [, f, b] = step.inputs.map(source);
    if (step.op === "CONV_2D") {
      step.filter = tf.tidy(() => tf.transpose(constant(f), [1, 2, 3, 0])); // OHWI -> HWIO
      step.bias = constant(b);
    } else if (step.op === "DEPTHWISE_CONV_2D") {
      const [, h, w, c] = tensors[f].shape;
      step.filter = tf.tidy(() => tf.reshape(constant(f), [h, w, c, 1]));
      step.bias = constant(b);
    } else if (step.op === "PAD") {
      const values = tensors[f].data;
      step.paddings = Array.from({ length: values.length / 2 }, (_, k) => [values[2 * k], values[2 * k + 1]]);
    } else if (step.op === "RESHAPE") {
      step.shape = tensors[step.outputs[0]].shape;
    }
  }

  function run(input) {
    return tf.tidy(() => {
      const values = new Map([[parsed.inputs[0], input]]);
      const get = (index) => values.get(source(index)) ?? constant(source(index));
      for (const step of steps) {
        const x = get(step.inputs[0]);
        const o = step.options;
        let y;
        switch (step.op) {
          case "CONV_2D":
            y = tf.fused.conv2d({
              x, filter: step.filter, bias: step.bias, strides: [o.int(2, 1), o.int(1, 1)],
              pad: padding(o), activation: ACTIVATION[o.int(3, 0, 1)],
            });
            break;
          case "DEPTHWISE_CONV_2D":
            y = tf.fused.depthwiseConv2d({
              x, filter: step.filter, bias: step.bias, strides: [o.int(2, 1), o.int(1, 1)],
              pad: padding(o), activation: ACTIVATION[o.int(4, 0, 1)],
            });
            break;
          case "ADD":
            y = tf.add(x, get(step.inputs[1]));
            if (o && o.int(0, 0, 1) === 1) y = tf.relu(y);
            break;
          case "RELU":
            y = tf.relu(x);
            break;
          case "MAX_POOL_2D":
            y = tf.maxPool(x, [o.int(4, 1), o.int(3, 1)], [o.int(2, 1), o.int(1, 1)], padding(o));
            break;
          case "PAD":
            y = tf.pad(x, step.paddings);
            break;
          case "RESHAPE":
            y = tf.reshape(x, step.shape);
            break;
          case "CONCATENATION":
            y = tf.concat(step.inputs.map(get), o.int(0));
            break;
          default:
            throw new Error(`the detector model uses an unsupported operator (${step.op})`);
        }
        values.set(step.outputs[0], y);
      }
      return parsed.outputs.map((index) => values.get(index));
    });
  }

  function dispose() {
    for (const t of constants.values()) t.dispose();
    for (const step of steps) step.filter?.dispose();
  }

  const outputNames = parsed.outputs.map((index) => tensors[index].name);
  return { run, dispose, outputNames };
}
