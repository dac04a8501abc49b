// Keyboard-driven grading. The page works without this file; it adds shortcuts, the
// highlighted "active question", time-on-task that excludes hidden-tab time, and focus moves.
(function () {
  "use strict";
  var active = 0;
  var visibleMs = 0;
  var visibleSince = document.hidden ? null : performance.now();

  function panel() { return document.getElementById("grading"); }
  function questions() { var p = panel(); return p ? Array.prototype.slice.call(p.querySelectorAll("[data-question]")) : []; }

  function setActive(i, focus) {
    var qs = questions();
    if (!qs.length) return;
    active = Math.max(0, Math.min(i, qs.length - 1));
    qs.forEach(function (q, n) { q.classList.toggle("active", n === active); });
    if (focus) {
      var checked = qs[active].querySelector("input:checked") || qs[active].querySelector("input");
      if (checked) checked.focus({ preventScroll: false });
    }
  }

  function keyToValue(kind, key, inputs) {
    if (kind === "preference") return { "1": "1", "2": "2", "3": "tie", "4": "both_bad", "t": "tie", "b": "both_bad" }[key];
    if (kind === "binary") return { "y": "1", "n": "0", "1": "1", "0": "0" }[key];
    return /^[0-9]$/.test(key) ? key : undefined;
  }

  function answer(key) {
    var qs = questions();
    var q = qs[active];
    if (!q) return false;
    var value = keyToValue(q.dataset.kind, key);
    if (value === undefined) return false;
    var input = q.querySelector('input[type=radio][value="' + value + '"]');
    if (!input) return false;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    if (active < qs.length - 1) { setActive(active + 1, true); } else { input.focus(); }
    return true;
  }

  function startClock() { visibleMs = 0; visibleSince = document.hidden ? null : performance.now(); }
  function activeMs() { return Math.round(visibleMs + (visibleSince === null ? 0 : performance.now() - visibleSince)); }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      if (visibleSince !== null) { visibleMs += performance.now() - visibleSince; visibleSince = null; }
    } else if (visibleSince === null) {
      visibleSince = performance.now();
    }
  });

  function toggleHelp(show) {
    var help = document.getElementById("shortcut-help");
    if (!help) return;
    var open = show === undefined ? help.hidden : show;
    help.hidden = !open;
    var button = document.querySelector("[data-help-toggle]");
    if (button) button.setAttribute("aria-expanded", String(open));
  }

  function openBox(id) {
    var box = document.getElementById(id);
    if (!box) return;
    box.open = true;
    // The first field a reviewer can use: the note, or the first reason (never the CSRF input).
    var first = box.querySelector("textarea, input:not([type=hidden])");
    if (first) first.focus();
  }

  function closeBoxes() {
    ["skip-box", "flag-box"].forEach(function (id) {
      var box = document.getElementById(id);
      if (box && box.open) { box.open = false; box.querySelector("summary").focus(); }
    });
  }

  function submitForm() {
    var form = document.getElementById("judgment-form");
    if (!form) return;
    // htmx wires up swapped-in content when it settles, ~20 ms after the swap that gave the
    // heading its focus: a key pressed in between would post the form natively (a full page).
    if (window.htmx) window.htmx.process(form);
    form.requestSubmit();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id === "judgment-form" && form.elements.active_ms) form.elements.active_ms.value = activeMs();
  }, true);

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-help-toggle]")) { toggleHelp(); return; }
    var q = event.target.closest("[data-question]");
    if (q) setActive(questions().indexOf(q), false);
  });

  document.addEventListener("keydown", function (event) {
    if (!panel() || event.altKey || event.metaKey) return;
    var target = event.target;
    var typing = target.matches("textarea, input[type=text], input[type=email], input[type=number]");
    var inBox = target.closest && target.closest("#skip-box, #flag-box");
    if (event.key === "Escape") { toggleHelp(false); if (inBox) { closeBoxes(); return; } if (typing) target.blur(); return; }
    // Inside the skip and flag boxes keys belong to their fields: no grading shortcuts there.
    if (inBox) return;
    if (typing) {
      if (event.key === "Enter" && event.ctrlKey && target.form && target.form.id === "judgment-form") {
        event.preventDefault(); submitForm();
      }
      return;
    }
    if (event.ctrlKey) return;
    if (event.key === "Enter") {
      // Enter on a link or a button keeps its own meaning; anywhere else it submits.
      if (target.matches("a, button, summary")) return;
      event.preventDefault(); submitForm(); return;
    }
    var key = event.key.toLowerCase();
    if (key === "?") { event.preventDefault(); toggleHelp(); return; }
    if (key === "j") { event.preventDefault(); setActive(active + 1, true); return; }
    if (key === "k") { event.preventDefault(); setActive(active - 1, true); return; }
    if (key === "r") { var r = document.querySelector("#judgment-form textarea"); if (r) { event.preventDefault(); r.focus(); } return; }
    if (key === "s") { event.preventDefault(); openBox("skip-box"); return; }
    if (key === "f") { event.preventDefault(); openBox("flag-box"); return; }
    if (answer(key)) event.preventDefault();
  });

  function init() {
    startClock();
    setActive(0, false);
    var heading = document.getElementById("item-heading");
    if (heading) heading.focus();
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "grading" || document.getElementById("grading")) init();
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
