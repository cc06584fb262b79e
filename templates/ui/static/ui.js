// The registry browser works without this file: it adds copy buttons and
// filters the index in place when every match is on the page.
"use strict";
(function () {
  function copied(btn, text) {
    btn.dataset.copied = text;
    btn.textContent = "Copied";
    setTimeout(function () { btn.textContent = "Copy"; }, 1500);
  }
  function fallback(btn, text) {
    var ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.appendChild(ta);
    ta.select();
    try { document.execCommand("copy"); copied(btn, text); } catch (e) { btn.textContent = "Select and copy"; }
    document.body.removeChild(ta);
  }
  document.querySelectorAll("button.copy").forEach(function (btn) {
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var text = btn.dataset.copy;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { copied(btn, text); },
          function () { fallback(btn, text); });
      } else {
        fallback(btn, text);
      }
    });
  });

  var input = document.getElementById("filter");
  if (!input || !input.dataset.local) return;
  var repos = Array.prototype.slice.call(document.querySelectorAll("section.repo"));
  var count = document.getElementById("count");
  var none = document.getElementById("nomatch");
  var all = count.dataset.all;
  function apply() {
    var q = input.value.trim().toLowerCase(), shown = 0;
    repos.forEach(function (r) {
      var hit = r.dataset.filter.indexOf(q) >= 0;
      r.hidden = !hit;
      if (hit) shown++;
    });
    count.textContent = shown + " of " + all + " images";
    none.hidden = shown > 0 || repos.length === 0;
  }
  input.addEventListener("input", apply);
  input.form.addEventListener("submit", function (e) { e.preventDefault(); apply(); });
})();
