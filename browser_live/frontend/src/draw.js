// The page's drawing, as facemask.pipeline.annotate draws a frame in Python: a box in the label's
// colour, "label NN%" on a filled band above the box (below it when there is no room), the same
// scale and line thickness for the frame's width; and its legend, a swatch and name per label in
// one row on a dark band along the bottom-left corner. Colours and label texts come from Python.

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

// OpenCV's FONT_HERSHEY_SIMPLEX at scale 1: 21 px from the cap line to the lowest descender, 9 of
// them below the baseline. cv2.getTextSize's height and baseline follow from these, the scale and
// the line thickness, whatever the text.
const HERSHEY_HEIGHT = 21;
const HERSHEY_DESCENT = 9;

/** The legend's scale, line thickness and font for a frame `width` px wide (annotate draws it
 * at 0.8 of the boxes' scale, one pixel thinner). */
function legendScale(width) {
  const { scale, thickness } = drawScale(width);
  const legend = scale * 0.8;
  return { scale: legend, thickness: Math.max(1, thickness - 1), font: `${Math.round(26 * legend)}px sans-serif` };
}

/** The legend's layout for a frame `width` x `height` (pipeline._draw_legend): the dark band
 * {x, y, w, h}, and per label its swatch {x, y, size}, its text and the text's baseline origin.
 * `measure(text)` is a text's width at the legend's font. */
function legendLayout(labels, width, height, args, measure) {
  const { scale, thickness } = legendScale(width);
  // cv2.getTextSize: height = round(21 * scale + (thickness + 1) // 2),
  // baseline = round(9 * scale + thickness / 2)
  const th = roundHalfEven(HERSHEY_HEIGHT * scale + Math.floor((thickness + 1) / 2));
  const base = roundHalfEven(HERSHEY_DESCENT * scale + thickness * 0.5);
  const swatch = th + base;
  const gap = Math.max(4, Math.floor(th / 2));
  const texts = labels.map((label) => args.labelText[label] || label);
  const widths = texts.map(measure);
  const bandWidth = widths.reduce((sum, w) => sum + swatch + 4 + w + 2 * gap, 0) + gap;
  const top = height - swatch - 2 * gap;
  // cv2.rectangle fills both corners: one pixel more than their difference each way
  const band = { x: 0, y: top, w: Math.min(bandWidth, width - 1) + 1, h: height - top };
  let x = gap;
  const items = labels.map((label, i) => {
    const item = {
      label, text: texts[i], swatch: { x, y: top + gap, size: swatch + 1 },
      textX: x + swatch + 4, textY: top + gap + th,
    };
    x += swatch + 4 + widths[i] + 2 * gap;
    return item;
  });
  return { band, items };
}

/** Draw the legend of `labels` (the model's) along the bottom-left corner of the frame. */
export function drawLegend(ctx, labels, width, height, args) {
  if (!labels?.length) return;
  ctx.font = legendScale(width).font;
  ctx.textBaseline = "alphabetic";
  const { band, items } = legendLayout(labels, width, height, args, (t) => ctx.measureText(t).width);
  ctx.fillStyle = "#000";
  ctx.fillRect(band.x, band.y, band.w, band.h);
  for (const { label, text, swatch, textX, textY } of items) {
    const [r, g, b] = args.colors[label] || args.fallbackColor;
    ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
    ctx.fillRect(swatch.x, swatch.y, swatch.size, swatch.size);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, textX, textY);
  }
}
