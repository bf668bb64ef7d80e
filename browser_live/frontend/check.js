// Runs before the page's bundle (which needs WebAssembly to even load): a browser without
// WebAssembly gets its one sentence instead of a silent page.
if (typeof WebAssembly !== "object") {
  const message = document.getElementById("message");
  message.textContent =
    "This browser cannot run WebAssembly, which the in-browser models need: use a current " +
    "Chrome, Edge, Firefox or Safari, or the server-side Live page.";
  message.hidden = false;
  document.getElementById("start").disabled = true;
}
