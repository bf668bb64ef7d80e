// One clear sentence for each way the page can fail to start. The camera sentences come from
// Python (facemask.browser.CAMERA_MESSAGES, in the component's arguments), which the server-side
// Live page shows too; no WebAssembly: ../check.js.

export const MESSAGES = {
  modelFailed: (detail) =>
    `The models could not be loaded (${detail}): reload the page; if this persists, the ` +
    "model's TF.js export is missing or damaged (re-export it with `facemask export`).",
};

/** The sentence (from `messages`, facemask.browser.CAMERA_MESSAGES) for a getUserMedia error. */
export function cameraMessage(error, messages) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return messages.refused;
    case "NotFoundError":
    case "OverconstrainedError":
    case "DevicesNotFoundError":
      return messages.noCamera;
    default:
      return messages.busy;
  }
}
