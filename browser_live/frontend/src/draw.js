// The page's drawing, as facemask.pipeline.annotate draws a frame in Python: a box in the label's
// colour, "label NN%" on a filled band above the box (below it when there is no room), the same
// scale and line thickness for the frame's width. Colours and label texts come from Python.

/** The drawing scale and box line thickness for a frame `width` px wide (pipeline.annotate). */
export function drawScale(width) {
  const scale = Math.max(0.45, Math.min(1.2, width / 900));
  return { scale, thickness: Math.max(1, roundHalfEven(scale * 2)) };
}

function roundHalfEven(value) {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** "Mask 93%": the label's text and the confidence as Python's f"{confidence:.0%}" writes it. */
export function labelText(detection, args) {
  const percent = roundHalfEven(Number((detection.confidence * 100).toPrecision(15)));
  return `${args.labelText[detection.label] || detection.label} ${percent}%`;
}

/** Draw the detections on a 2D context the size of the frame. */
export function drawDetections(ctx, detections, width, height, args) {
  const { scale, thickness } = drawScale(width);
  ctx.font = `${Math.round(26 * scale)}px sans-serif`;
  ctx.textBaseline = "top";
  for (const d of detections) {
    const [x1, y1, x2, y2] = d.box;
    const [r, g, b] = args.colors[d.label] || args.fallbackColor;
    const color = `rgb(${r}, ${g}, ${b})`;
    ctx.strokeStyle = color;
    ctx.lineWidth = thickness;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = labelText(d, args);
    const tw = ctx.measureText(text).width;
    const th = Math.round(30 * scale);
    const ty = y1 - th >= 0 ? y1 - th : Math.min(y2 + 2, height - th);
    ctx.fillStyle = color;
    ctx.fillRect(x1, ty, tw + 8, th);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, x1 + 4, ty + 2);
  }
}
