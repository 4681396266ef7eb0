/* attention.js - two toys on docs/forward.html, in plain JavaScript.
 *
 * 1. RoPE on one 2-D pair: q at position m and k at position n are rotated
 *    by m*f and n*f; their dot product depends only on m - n.
 * 2. Causal softmax attention over 5 tokens with D = 2: every token's key is
 *    a direction (a slider), the query direction and length are sliders;
 *    the table shows softmax(q . k_j / sqrt(D)) with the causal mask - a
 *    token only sees itself and earlier tokens, as in src/cpu/attention.c.
 */
"use strict";
(function () {
  var N = 5;

  function rot(v, a) { var c = Math.cos(a), s = Math.sin(a); return [v[0] * c - v[1] * s, v[1] * c + v[0] * s]; }
  function dot(a, b) { return a[0] * b[0] + a[1] * b[1]; }
  function val(root, name) { return parseFloat(root.querySelector("[name=" + name + "]").value); }

  /* ---- RoPE ---- */
  function ropeRender(root) {
    var m = val(root, "m"), n = val(root, "n"), f = val(root, "f");
    var q = [1, 0.35], k = [0.8, -0.5];
    var qr = rot(q, m * f), kr = rot(k, n * f);
    var d = dot(qr, kr), d0 = dot(rot(q, (m - n) * f), k);
    root.querySelector(".vals").textContent =
      "m = " + m + ", n = " + n + ", frequency f = " + f.toFixed(2) + " rad/position\n" +
      "q rotated by m*f = " + (m * f).toFixed(2) + " rad, k by n*f = " + (n * f).toFixed(2) + " rad\n" +
      "q_m . k_n = " + d.toFixed(4) + "   (the same pair moved to positions " + (m - n) + " and 0: " +
      d0.toFixed(4) + ")";
    root.dataset.dot = d.toFixed(6);
    root.dataset.dot0 = d0.toFixed(6);
    var S = 90, c = 110;
    function arrow(v, color) {
      return '<line x1="' + c + '" y1="' + c + '" x2="' + (c + v[0] * S) + '" y2="' + (c - v[1] * S) +
             '" stroke="' + color + '" stroke-width="3" marker-end="url(#ah-' + color.slice(1) + ')"/>';
    }
    function marker(color) {
      return '<marker id="ah-' + color.slice(1) + '" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="6" ' +
             'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="' + color + '"/></marker>';
    }
    root.querySelector(".plot").innerHTML =
      '<svg viewBox="0 0 220 220" width="220" height="220" role="img" aria-label="rotated q and k">' +
      "<defs>" + marker("#b4521e") + marker("#1f5f8b") + "</defs>" +
      '<circle cx="110" cy="110" r="90" fill="none" stroke="#ddd8ca"/>' +
      '<line x1="10" y1="110" x2="210" y2="110" stroke="#eee"/><line x1="110" y1="10" x2="110" y2="210" stroke="#eee"/>' +
      arrow(qr, "#b4521e") + arrow(kr, "#1f5f8b") +
      '<text x="8" y="18" font-size="12" fill="#b4521e">q at m</text><text x="8" y="34" font-size="12" fill="#1f5f8b">k at n</text></svg>';
  }

  /* ---- causal attention ---- */
  function attnWeights(qs, ks) {
    // w[t][j] for j <= t; null above the diagonal (masked)
    var scale = 1 / Math.sqrt(2);
    return qs.map(function (q, t) {
      var s = [];
      for (var j = 0; j <= t; j++) s.push(dot(q, ks[j]) * scale);
      var mx = Math.max.apply(null, s);
      var e = s.map(function (x) { return Math.exp(x - mx); });
      var z = e.reduce(function (a, b) { return a + b; }, 0);
      var row = [];
      for (var jj = 0; jj < N; jj++) row.push(jj <= t ? e[jj] / z : null);
      return row;
    });
  }

  function attnRender(root) {
    var ks = [], qs = [];
    for (var j = 0; j < N; j++) ks.push(rot([1, 0], val(root, "k" + j) * Math.PI / 180));
    var qa = val(root, "qa") * Math.PI / 180, ql = val(root, "ql");
    for (var t = 0; t < N; t++) qs.push(rot([ql, 0], qa));
    var w = attnWeights(qs, ks);
    var html = "<tr><th>query token \\ key token</th>";
    for (var c = 0; c < N; c++) html += "<th>" + c + "</th>";
    html += "</tr>";
    w.forEach(function (row, t) {
      html += "<tr><th>" + t + "</th>";
      row.forEach(function (x) {
        if (x === null) html += '<td style="background:#eee;color:#999">masked</td>';
        else html += '<td style="background:rgba(180,82,30,' + (0.08 + 0.8 * x).toFixed(2) + ')">' + x.toFixed(2) + "</td>";
      });
      html += "</tr>";
    });
    root.querySelector("table.grid").innerHTML = html;
    root.dataset.weights = JSON.stringify(w);
  }

  /* show each slider's value after it */
  function showValues(root) {
    Array.prototype.forEach.call(root.querySelectorAll("input[type=range]"), function (inp) {
      var v = inp.nextElementSibling;
      if (!v || !v.classList.contains("v")) {
        v = document.createElement("span");
        v.className = "v";
        inp.parentNode.insertBefore(v, inp.nextSibling);
      }
      v.textContent = " " + inp.value;
    });
  }

  function setup() {
    var rope = document.getElementById("ropetoy"), attn = document.getElementById("attntoy");
    if (rope) {
      rope.addEventListener("input", function () { ropeRender(rope); showValues(rope); });
      ropeRender(rope);
      showValues(rope);
    }
    if (attn) {
      attn.addEventListener("input", function () { attnRender(attn); showValues(attn); });
      attnRender(attn);
      showValues(attn);
    }
    window.fsSelfTests.push({ name: "rope toy", fn: function () {
      if (!rope) return "no #ropetoy";
      var m = rope.querySelector("[name=m]"), n = rope.querySelector("[name=n]");
      m.value = 7; n.value = 3; m.dispatchEvent(new Event("input", { bubbles: true }));
      var a = rope.dataset.dot;
      m.value = 12; n.value = 8; n.dispatchEvent(new Event("input", { bubbles: true }));
      var b = rope.dataset.dot;
      if (a !== b) return "q.k changed with the same distance: " + a + " vs " + b;
      if (Math.abs(parseFloat(a) - parseFloat(rope.dataset.dot0)) > 1e-6) return "relative-position identity";
      return true;
    }});
    window.fsSelfTests.push({ name: "attention toy", fn: function () {
      if (!attn) return "no #attntoy";
      var qa = attn.querySelector("[name=qa]"), k2 = attn.querySelector("[name=k2]");
      k2.value = 90; qa.value = 0; qa.dispatchEvent(new Event("input", { bubbles: true }));
      var before = JSON.parse(attn.dataset.weights)[4][2];
      qa.value = 90; qa.dispatchEvent(new Event("input", { bubbles: true }));
      var w = JSON.parse(attn.dataset.weights);
      for (var t = 0; t < N; t++) {
        var sum = 0;
        for (var j = 0; j < N; j++) {
          if (j > t && w[t][j] !== null) return "row " + t + " sees the future";
          if (j <= t) sum += w[t][j];
        }
        if (Math.abs(sum - 1) > 1e-9) return "row " + t + " sums to " + sum;
      }
      if (!(w[4][2] > before)) return "turning q toward k2 did not raise its weight";
      if (attn.querySelectorAll("td").length !== N * N) return "table not rendered";
      return true;
    }});
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup); else setup();
})();
