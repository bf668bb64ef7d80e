// The few messages of Streamlit's custom-component protocol (v1) this component needs,
// without streamlit-component-lib (which would add React and Apache Arrow to the download).

function send(type, data = {}) {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
}

/** Call `onRender(args)` on every render from Streamlit, then tell Streamlit we are ready. */
export function connect(onRender) {
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || event.data?.type !== "streamlit:render") return;
    onRender(event.data.args || {});
  });
  send("streamlit:componentReady", { apiVersion: 1 });
}

export function setFrameHeight(height = document.documentElement.scrollHeight) {
  send("streamlit:setFrameHeight", { height });
}
