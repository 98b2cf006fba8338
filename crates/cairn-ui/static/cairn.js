// Progressive enhancement only: every page works without this file.
// The compare button is enabled only while 2 to 10 runs are selected.
(function () {
  "use strict";
  var form = document.getElementById("compare-form");
  var button = document.getElementById("compare-button");
  if (!form || !button) { return; }
  function update() {
    var selected = form.querySelectorAll('input[name="runs"]:checked').length;
    button.disabled = selected < 2 || selected > 10;
    button.setAttribute("aria-describedby", "compare-count");
    var count = document.getElementById("compare-count");
    if (!count) {
      count = document.createElement("span");
      count.id = "compare-count";
      count.className = "muted small";
      count.setAttribute("aria-live", "polite");
      button.parentNode.insertBefore(count, button);
    }
    count.textContent = selected + " selected";
  }
  form.addEventListener("change", update);
  update();
})();

// A running job's log: new bytes are fetched by offset every two seconds and appended as text.
(function () {
  "use strict";
  var log = document.getElementById("job-log");
  if (!log || log.getAttribute("data-complete") === "true" || !window.fetch) { return; }
  var url = log.getAttribute("data-log-url");
  var offset = log.getAttribute("data-next-offset");
  var decoder = new TextDecoder("utf-8");
  var state = document.getElementById("job-state");
  var status = document.getElementById("log-status");
  var next = document.getElementById("log-next");
  if (next) { next.hidden = true; }
  function poll() {
    fetch(url + "?offset=" + encodeURIComponent(offset), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        var nextOffset = response.headers.get("x-next-offset");
        var complete = response.headers.get("x-log-complete") === "true";
        var jobState = response.headers.get("x-job-state");
        return response.arrayBuffer().then(function (buffer) {
          var text = decoder.decode(new Uint8Array(buffer), { stream: !complete });
          if (text) { log.appendChild(document.createTextNode(text)); }
          if (nextOffset) { offset = nextOffset; }
          if (state && jobState && state.textContent !== jobState) {
            state.textContent = jobState;
            state.className = "status status-" + jobState;
          }
          if (complete) {
            if (status) { status.textContent = "The whole log (the job has ended)."; }
            return;
          }
          window.setTimeout(poll, 2000);
        });
      })
      .catch(function () {
        if (status) { status.textContent = "New output could not be fetched; reload the page."; }
        if (next) { next.hidden = false; }
      });
  }
  window.setTimeout(poll, 1000);
})();
