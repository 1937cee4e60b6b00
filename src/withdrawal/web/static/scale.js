// Live total (and COWS band) while items are chosen. The server computes the same on submit,
// so the form works without this script.
(function () {
  "use strict";
  var form = document.getElementById("scale-form");
  if (!form) { return; }
  var bands = form.dataset.bands ? JSON.parse(form.dataset.bands) : [];
  var total = document.getElementById("total");
  var bandEl = document.getElementById("band");
  var answered = document.getElementById("answered");
  var nextEl = document.getElementById("next-step");
  var steps = form.dataset.next ? JSON.parse(form.dataset.next) : [];
  var groups = form.querySelectorAll("fieldset.item");

  function update() {
    var sum = 0, done = 0;
    groups.forEach(function (fs) {
      var checked = fs.querySelector("input[type=radio]:checked");
      if (checked) { sum += parseInt(checked.dataset.score, 10); done += 1; }
    });
    total.textContent = done ? String(sum) : "–";
    var complete = done === groups.length;
    answered.textContent = complete ? "All " + groups.length + " answered." :
      done + " of " + groups.length + " answered" + (done ? " (total so far)." : ".");
    if (bandEl) {
      var band = null;
      bands.forEach(function (b) { if (sum >= b.min && sum <= b.max) { band = b; } });
      bandEl.textContent = complete && band ? band.label : (band ? band.label + " so far" : "choose every item");
      bandEl.className = complete && band ? "band sev-" + band.sev : "";
    }
    if (nextEl) {
      var step = null;
      steps.forEach(function (s) { if (sum >= s.min && sum <= s.max) { step = s; } });
      nextEl.textContent = complete && step ? "Next step: " + step.text : "Next step: score every item.";
    }
  }
  form.addEventListener("change", update);
  update();
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
}());
