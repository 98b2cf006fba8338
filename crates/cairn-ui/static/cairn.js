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
