// Small page helpers; every page works without them.
// 1. A link to a folded section (<details>) opens it.
// 2. A "copy" button copies the text of the element its data-copy names (the COWS result for the chart).
(function () {
  "use strict";
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    var d = el && (el.tagName === "DETAILS" ? el : el.closest("details"));
    if (d) { d.open = true; el.scrollIntoView(); }
  }
  window.addEventListener("hashchange", openTarget);
  var focusFirst = document.querySelector("[data-autofocus]");
  if (focusFirst) { focusFirst.focus(); }
  openTarget();
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      var src = document.getElementById(b.dataset.copy);
      var status = document.getElementById(b.dataset.copy + "-copied");
      if (!src || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(src.innerText.trim()).then(function () {
        if (status) { status.textContent = "Copied."; }
      }, function () {
        if (status) { status.textContent = "Could not copy: select the text instead."; }
      });
    });
  });
}());
