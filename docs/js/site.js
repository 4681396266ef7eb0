/* site.js - loaded first on every page of the fs site.
 *
 * It records script errors and console.error calls, and with ?test=1 in
 * the URL runs the page's self-tests (interactive parts register them in
 * window.fsSelfTests) after load, then writes one line, "FS-DOCS-TEST ok"
 * or "FS-DOCS-TEST FAIL: ...", into document.title and a <pre
 * id="fs-test-result">. tests/e2e_docs.sh reads that line. On the source
 * views it marks the lines a #L120-L140 link names. No network, no
 * framework.
 */
"use strict";
window.fsErrors = [];
window.fsSelfTests = [];
window.addEventListener("error", function (ev) {
  window.fsErrors.push("error: " + (ev.message || "resource failed to load") +
                       (ev.filename ? " at " + ev.filename + ":" + ev.lineno : "") +
                       (ev.target && ev.target.src ? " " + ev.target.src : ""));
}, true);
(function () {
  var orig = console.error;
  console.error = function () {
    window.fsErrors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return orig.apply(console, arguments);
  };
})();
/* Source views: #L120-L140 marks lines 120 to 140 (the page scrolls to an
 * empty anchor with that id, placed before line 120). */
function fsMarkLines() {
  var m = /^#L(\d+)-L(\d+)$/.exec(location.hash);
  Array.prototype.forEach.call(document.querySelectorAll("pre.code span.hl"), function (el) {
    el.classList.remove("hl");
  });
  if (!m) return;
  for (var i = +m[1]; i <= +m[2]; i++) {
    var el = document.getElementById("L" + i);
    if (el) el.classList.add("hl");
  }
}
window.addEventListener("hashchange", fsMarkLines);
window.addEventListener("DOMContentLoaded", fsMarkLines);
window.addEventListener("load", function () {
  if (!/[?&]test=1\b/.test(location.search)) return;
  var fails = [];
  window.fsSelfTests.forEach(function (t) {
    try {
      var r = t.fn();
      if (r !== true) fails.push(t.name + ": " + r);
    } catch (ex) {
      fails.push(t.name + ": threw " + ex);
    }
  });
  // every image must have decoded (a broken SVG link shows up here)
  Array.prototype.forEach.call(document.images, function (img) {
    if (!img.complete || img.naturalWidth === 0) fails.push("image did not load: " + img.getAttribute("src"));
  });
  fails = fails.concat(window.fsErrors);
  var line = fails.length ? "FS-DOCS-TEST FAIL: " + fails.join(" | ")
                          : "FS-DOCS-TEST ok (" + window.fsSelfTests.length + " self-tests)";
  document.title = line;
  var pre = document.createElement("pre");
  pre.id = "fs-test-result";
  pre.textContent = line;
  document.body.appendChild(pre);
});
