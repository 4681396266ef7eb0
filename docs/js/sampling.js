/* sampling.js - the sampler toy on docs/sampling.html, in plain JavaScript.
 *
 * The tiny model's real next-token logits (window.FS_NEXT_TOKEN, written
 * by tools/docs_figures.py from docs/data/next-token-*.json) go through
 * the same steps as src/sampler.c: temperature, top-k (ties at the
 * boundary kept), top-p (keep a token while the mass before it is below
 * p), min-p (p >= min_p * p_max), then renormalisation. The bars show the
 * 16 most likely tokens before (grey, T = 1) and after (colour).
 *
 * Self-test (?test=1): for the parameter sets tools/docs_figures.py
 * computed in Python, the survivors, the top token and its probability
 * must be the same here.
 */
"use strict";
(function () {
  var SHOW = 16;

  function filter(set, T, topK, topP, minP) {
    var L = set.logits, V = L.length, order = set.order, i, n;
    if (!order) {
      order = [];
      for (i = 0; i < V; i++) order.push(i);
      order.sort(function (a, b) { return L[b] - L[a] || a - b; });
      set.order = order;
    }
    var cand = order;
    if (topK > 0 && topK < V) {
      var thr = L[order[topK - 1]];
      cand = order.filter(function (id) { return L[id] >= thr; });
    }
    var mx = L[cand[0]], prob = [], z = 0;
    for (i = 0; i < cand.length; i++) { prob.push(Math.exp((L[cand[i]] - mx) / T)); z += prob[i]; }
    n = cand.length;
    if (topP < 1) {
      var before = 0, keep = 0;
      while (keep < n && before < topP * z) before += prob[keep++];
      n = keep;
    }
    var out = [];
    for (i = 0; i < n; i++) if (!(minP > 0) || prob[i] >= minP) out.push([cand[i], prob[i]]);
    var s = 0;
    out.forEach(function (x) { s += x[1]; });
    out.forEach(function (x) { x[1] /= s; });
    return out;
  }

  function softmax1(set) {
    if (set.base) return set.base;
    var L = set.logits, mx = -Infinity, z = 0, i, p = {};
    for (i = 0; i < L.length; i++) if (L[i] > mx) mx = L[i];
    for (i = 0; i < L.length; i++) z += Math.exp(L[i] - mx);
    set.top.forEach(function (t) { p[t[0]] = Math.exp(L[t[0]] - mx) / z; });
    set.base = p;
    return p;
  }

  function esc(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/ /g, "\u2423").replace(/\n/g, "\\n");
  }

  function render(root) {
    var sets = window.FS_NEXT_TOKEN, set = sets[+root.querySelector("[name=set]").value];
    var T = parseFloat(root.querySelector("[name=T]").value);
    var k = parseInt(root.querySelector("[name=k]").value, 10);
    var p = parseFloat(root.querySelector("[name=p]").value);
    var m = parseFloat(root.querySelector("[name=m]").value);
    root.querySelector(".vT").textContent = T.toFixed(2);
    root.querySelector(".vk").textContent = k === 0 ? "off" : String(k);
    root.querySelector(".vp").textContent = p >= 1 ? "off" : p.toFixed(2);
    root.querySelector(".vm").textContent = m <= 0 ? "off" : m.toFixed(2);
    var surv = filter(set, T, k, p, m), after = {}, base = softmax1(set), mx = 0;
    surv.forEach(function (x) { after[x[0]] = x[1]; });
    var rows = set.top.slice(0, SHOW);
    rows.forEach(function (t) { mx = Math.max(mx, base[t[0]], after[t[0]] || 0); });
    var html = "";
    rows.forEach(function (t) {
      var a = after[t[0]] || 0, wb = (100 * base[t[0]] / mx).toFixed(1), wa = (100 * a / mx).toFixed(1);
      html += '<div class="srow"><code>' + esc(t[1]) + '</code><span class="track"><i class="b" style="width:' + wb +
              '%"></i><i class="a" style="width:' + wa + '%"></i></span><span class="pv">' +
              (a > 0 ? a.toFixed(3) : "cut") + "</span></div>";
    });
    root.querySelector(".bars").innerHTML = html;
    root.querySelector(".out").textContent =
      surv.length + " of " + set.logits.length + " tokens survive; the most likely, \"" + set.top[0][1] +
      "\", is drawn with probability " + (after[set.top[0][0]] || 0).toFixed(3) + ".\n" +
      "Prompt \"" + set.prompt + "\": " + set.command.replace("FILE", "...") + " (" + set.binary + ", " + set.date + ")";
    root.dataset.n = String(surv.length);
  }

  function init() {
    var root = document.getElementById("samptoy");
    if (!root || !window.FS_NEXT_TOKEN) return;
    var sel = root.querySelector("[name=set]");
    window.FS_NEXT_TOKEN.forEach(function (s, i) {
      var o = document.createElement("option");
      o.value = String(i);
      o.textContent = "\u201c" + s.prompt + "\u201d";
      sel.appendChild(o);
    });
    Array.prototype.forEach.call(root.querySelectorAll("input, select"), function (el) {
      el.addEventListener("input", function () { render(root); });
    });
    render(root);
  }

  window.fsSelfTests.push({
    name: "sampling toy",
    fn: function () {
      var root = document.getElementById("samptoy");
      if (!root) return "no #samptoy";
      if (!window.FS_NEXT_TOKEN || !window.FS_NEXT_TOKEN.length) return "no data (js/fsdata-next-token.js)";
      var bad = [];
      window.FS_NEXT_TOKEN.forEach(function (set) {
        set.checks.forEach(function (c) {
          var s = filter(set, c.T, c.top_k, c.top_p, c.min_p);
          if (s.length !== c.n || s[0][0] !== c.top || Math.abs(s[0][1] - c.p_top) > 1e-5)
            bad.push(set.name + " T=" + c.T + " k=" + c.top_k + " p=" + c.top_p + " min_p=" + c.min_p + ": " + s.length +
                     " survivors, top " + s[0][0] + " " + s[0][1].toFixed(6) + "; Python: " + c.n + ", " + c.top + " " + c.p_top);
        });
      });
      if (bad.length) return bad.join("; ");
      root.querySelector("[name=k]").value = "2";
      render(root);
      if (root.dataset.n !== "2") return "top-k = 2 shows " + root.dataset.n + " survivors";
      if (root.querySelectorAll(".srow").length !== SHOW) return "expected " + SHOW + " bars";
      root.querySelector("[name=k]").value = "0";
      render(root);
      return true;
    }
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
