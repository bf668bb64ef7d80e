// One clear sentence for each way the page can fail to start (no WebAssembly: ../check.js).

export const MESSAGES = {
  insecure:
    "Browsers only allow the camera on secure pages: open the app over https or on localhost " +
    "(this page was opened over plain http from another machine).",
  refused:
    "The browser blocked the camera: allow it for this site (the camera icon in the address " +
    "bar) and press Start again.",
  noCamera: "No camera was found: connect one and press Start again.",
  busy: "The camera is in use by another application or could not be started: close that application and press Start again.",
  modelFailed: (detail) =>
    `The models could not be loaded (${detail}): reload the page; if this persists, the ` +
    "model's TF.js export is missing or damaged (re-export it with `facemask export`).",
};

/** The sentence for a getUserMedia error. */
export function cameraMessage(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return MESSAGES.refused;
    case "NotFoundError":
    case "OverconstrainedError":
    case "DevicesNotFoundError":
      return MESSAGES.noCamera;
    default:
      return MESSAGES.busy;
  }
}
