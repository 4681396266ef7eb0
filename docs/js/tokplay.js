/* tokplay.js - the tokenizer playground on docs/tokenizer.html.
 *
 * A TEACHING COPY of the first stages of fs's tokenizer, in plain JavaScript:
 * added tokens found in the raw text, NFC, the pre-tokenizer split, and the
 * byte-level alphabet. The real thing is C: src/tokenizer.c (fs_pretok_next
 * writes the regex out by hand) and src/unicode.c (NFC). BPE merges are not
 * done here: they need the 151,387 merges of tokenizer.json, which this
 * page does not load (run `./fs tokenize` for ids).
 *
 * The split uses the regex of Qwen3's tokenizer.json, alternative by
 * alternative, with two adjustments for JavaScript: (?i:...) becomes
 * explicit character classes (including U+017F, which folds to 's'), and
 * \s becomes the exact Unicode White_Space set (JS's own \s adds U+FEFF and
 * lacks U+0085). JS regexes, like Oniguruma, take the first alternative
 * that matches, so the split is the same.
 */
"use strict";
(function () {
  var WS = "\\t\\n\\v\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
  var ALTS = [
    ["'(?:[sS\\u017F]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])", "(?i:'s|'t|'re|'ve|'m|'ll|'d)", "contraction"],
    ["[^\\r\\n\\p{L}\\p{N}]?\\p{L}+", "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+", "word (+ one leading non-letter)"],
    ["\\p{N}", "\\p{N}", "one digit"],
    [" ?[^" + WS + "\\p{L}\\p{N}]+[\\r\\n]*", " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*", "punctuation run"],
    ["[" + WS + "]*[\\r\\n]+", "\\s*[\\r\\n]+", "line breaks"],
    ["[" + WS + "]+(?![^" + WS + "])", "\\s+(?!\\S)", "spaces not before a word"],
    ["[" + WS + "]+", "\\s+", "remaining spaces"],
  ];
  var STICKY = ALTS.map(function (a) { return new RegExp(a[0], "uy"); });
  var ADDED = {
    "<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|object_ref_start|>": 151646,
    "<|object_ref_end|>": 151647, "<|box_start|>": 151648, "<|box_end|>": 151649, "<|quad_start|>": 151650,
    "<|quad_end|>": 151651, "<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|vision_pad|>": 151654,
    "<|image_pad|>": 151655, "<|video_pad|>": 151656, "<tool_call>": 151657, "</tool_call>": 151658,
    "<|fim_prefix|>": 151659, "<|fim_middle|>": 151660, "<|fim_suffix|>": 151661, "<|fim_pad|>": 151662,
    "<|repo_name|>": 151663, "<|file_sep|>": 151664, "<tool_response>": 151665, "</tool_response>": 151666,
    "<think>": 151667, "</think>": 151668,
  };

  /* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other
   * 68 get code points 256, 257, ... in byte order (space -> U+0120 'Ġ'). */
  var BYTE_CHAR = (function () {
    var m = [], next = 256;
    for (var b = 0; b < 256; b++) {
      var printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
      m.push(String.fromCharCode(printable ? b : next++));
    }
    return m;
  })();

  /* Split one span (no added tokens inside, already NFC) into pieces. */
  function split(span) {
    var out = [], i = 0;
    while (i < span.length) {
      var hit = null;
      for (var a = 0; a < STICKY.length && !hit; a++) {
        STICKY[a].lastIndex = i;
        var m = STICKY[a].exec(span);
        if (m && m[0].length) hit = { text: m[0], alt: a + 1 };
      }
      if (!hit) hit = { text: span[i], alt: 0 };  // cannot happen: every character is L, N, space or other
      out.push(hit);
      i += hit.text.length;
    }
    return out;
  }

  /* The whole teaching pipeline: added tokens in the raw text (longest at
   * the leftmost position), NFC per span, split. */
  function pretokenize(text) {
    var names = Object.keys(ADDED).sort(function (x, y) { return y.length - x.length; });
    var out = [], span = 0, i = 0;
    while (i < text.length) {
      var found = null;
      if (text[i] === "<")
        for (var k = 0; k < names.length && !found; k++)
          if (text.startsWith(names[k], i)) found = names[k];
      if (!found) { i++; continue; }
      out = out.concat(split(text.slice(span, i).normalize("NFC")));
      out.push({ text: found, alt: "special", id: ADDED[found] });
      i += found.length;
      span = i;
    }
    return out.concat(split(text.slice(span).normalize("NFC")));
  }

  function utf8(s) { return Array.from(new TextEncoder().encode(s)); }
  function byteLevel(s) { return utf8(s).map(function (b) { return BYTE_CHAR[b]; }).join(""); }
  function hex(bs) { return bs.map(function (b) { return b.toString(16).padStart(2, "0"); }).join(" "); }
  function show(s) { return s.replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t"); }

  function render(root) {
    var text = root.querySelector("textarea").value;
    var pieces = pretokenize(text);
    var nfc = text.normalize("NFC");
    root.querySelector(".nfcnote").textContent = nfc === text
      ? "NFC: the text is already in NFC (nothing changes)."
      : "NFC changed the text: " + text.length + " UTF-16 units became " + nfc.length +
        " (composed characters). fs does this per span between added tokens.";
    var box = root.querySelector(".pieces");
    box.textContent = "";
    var rows = [];
    pieces.forEach(function (p) {
      var el = document.createElement("span");
      el.className = "piece " + (p.alt === "special" ? "special" : "alt" + p.alt);
      el.textContent = show(p.text);
      el.title = p.alt === "special" ? "added token, id " + p.id : "alternative " + p.alt + ": " + ALTS[p.alt - 1][1];
      var sub = document.createElement("sub");
      sub.textContent = p.alt === "special" ? p.id : p.alt;
      el.appendChild(sub);
      box.appendChild(el);
      rows.push("<tr><td>" + esc(show(p.text).replace(/ /g, "\u2423")) + "</td><td>" +
                (p.alt === "special" ? "added token " + p.id : p.alt) + "</td><td>" +
                (p.alt === "special" ? "(one id, no BPE)" : hex(utf8(p.text))) + "</td><td>" +
                (p.alt === "special" ? "" : esc(byteLevel(p.text))) + "</td></tr>");
    });
    root.querySelector("tbody").innerHTML = rows.join("");
    root.querySelector(".count").textContent = pieces.length + " pieces, " + utf8(text).length + " bytes";
    root.dataset.pieces = JSON.stringify(pieces.map(function (p) { return p.text; }));
  }
  function esc(s) { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }

  function setup() {
    var root = document.getElementById("tokplay");
    if (!root) return;
    var legend = root.querySelector(".legend");
    ALTS.forEach(function (a, i) {
      var s = document.createElement("span");
      s.className = "alt" + (i + 1);
      s.textContent = (i + 1) + " " + a[2] + "  " + a[1];
      legend.appendChild(s);
    });
    var sp = document.createElement("span");
    sp.className = "special";
    sp.textContent = "added token";
    legend.appendChild(sp);
    root.querySelector("textarea").addEventListener("input", function () { render(root); });
    render(root);

    window.fsSelfTests.push({ name: "tokenizer playground", fn: function () {
      var ta = root.querySelector("textarea"), saved = ta.value;
      ta.value = "Hello, world! Don't panic:  3.14 caf\u0065\u0301\n<|im_end|>";
      ta.dispatchEvent(new Event("input"));
      var got = JSON.parse(root.dataset.pieces);
      var want = ["Hello", ",", " world", "!", " Don", "'t", " panic", ":", " ", " ", "3", ".", "1", "4",
                  " caf\u00e9", "\n", "<|im_end|>"];
      ta.value = saved;
      ta.dispatchEvent(new Event("input"));
      if (JSON.stringify(got) !== JSON.stringify(want)) return "split " + JSON.stringify(got);
      if (byteLevel(" caf\u00e9") !== "\u0120caf\u00c3\u00a9") return "byte-level alphabet " + byteLevel(" caf\u00e9");
      if (root.querySelectorAll(".piece").length < 1) return "nothing rendered";
      return true;
    }});
  }
  if (typeof document === "undefined") {  // node: for checking the teaching copy against fs
    module.exports = { pretokenize: pretokenize, byteLevel: byteLevel };
    return;
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup); else setup();
})();
