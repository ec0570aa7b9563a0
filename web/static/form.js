// Progressive enhancement of the agency form. Everything here is optional: the form works
// fully without it (buttons post the form and the server re-renders).
(function () {
  "use strict";
  var form = document.getElementById("answer-form");
  if (!form) { return; }
  document.documentElement.classList.add("js");

  // Show only the follow-up fields that fit the chosen progress of each milestone
  // (fields holding text or an error stay visible, so nothing typed is hidden).
  function syncMilestone(box) {
    var checked = box.querySelector("input[type=radio]:checked");
    var value = checked ? checked.value : "";
    box.querySelectorAll(".when").forEach(function (group) {
      var wanted = group.getAttribute("data-when").split(" ").indexOf(value) >= 0;
      var filled = Array.prototype.some.call(
        group.querySelectorAll("input, textarea"), function (el) { return el.value.trim() !== ""; });
      var error = group.querySelector(".has-error") !== null;
      group.classList.toggle("hidden", !(wanted || filled || error));
    });
  }
  form.querySelectorAll("[data-milestone]").forEach(function (box) {
    syncMilestone(box);
    box.addEventListener("change", function () { syncMilestone(box); });
  });

  // Live period checking, with the same parser the server uses.
  var timers = new WeakMap();
  function checkPeriod(input) {
    var out = document.getElementById(input.id + "-check");
    if (!out) { return; }
    var text = input.value;
    if (!text.trim()) { out.textContent = ""; out.className = "period-check"; return; }
    fetch("/form/period?text=" + encodeURIComponent(text), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (input.value !== text) { return; }
        if (data.ok) {
          out.textContent = data.empty ? "" : "Reads as " + data.text + " (" + data.start + " to " + data.end + ").";
          out.className = "period-check ok";
        } else {
          out.textContent = data.message || "This period cannot be read.";
          out.className = "period-check bad";
        }
      })
      .catch(function () { /* offline: the server checks on save */ });
  }
  form.addEventListener("input", function (event) {
    var el = event.target;
    if (el.hasAttribute && el.hasAttribute("data-period")) {
      clearTimeout(timers.get(el));
      timers.set(el, setTimeout(function () { checkPeriod(el); }, 300));
    }
  });

  // Add and remove rows in the page instead of a round trip.
  function renumber(row, index) {
    row.querySelectorAll("[id], [name], [for], [aria-describedby], [value]").forEach(function (el) {
      ["id", "name", "for", "aria-describedby"].forEach(function (attr) {
        var value = el.getAttribute(attr);
        if (value) { el.setAttribute(attr, value.replace(/^([afn]-\d+-)\d+/, "$1" + index).replace(/ ([afn]-\d+-)\d+/g, " $1" + index)); }
      });
      if (el.tagName === "BUTTON" && el.value) {
        el.value = el.value.replace(/^(remove:[afn]-\d+-)\d+$/, "$1" + index);
      }
    });
  }
  form.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[name=action]") : null;
    if (!button) { return; }
    var value = button.value || "";
    var rows = button.closest("[data-rows]");
    if (value.indexOf("add:") === 0 && rows) {
      event.preventDefault();
      var all = rows.querySelectorAll("[data-row]");
      var last = all[all.length - 1];
      if (!last) { form.requestSubmit(button); return; }
      var copy = last.cloneNode(true);
      var next = 0;
      all.forEach(function (row) {
        var named = row.querySelector("[name]");
        var m = named && named.name.match(/^[afn]-\d+-(\d+)-/);
        if (m) { next = Math.max(next, parseInt(m[1], 10) + 1); }
      });
      copy.querySelectorAll("input, textarea").forEach(function (el) { el.value = ""; el.removeAttribute("aria-invalid"); });
      copy.querySelectorAll(".error-message, .period-check").forEach(function (el) {
        if (el.classList.contains("period-check")) { el.textContent = ""; } else { el.remove(); }
      });
      copy.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
      renumber(copy, next);
      last.parentNode.insertBefore(copy, last.nextSibling);
      var first = copy.querySelector("input, textarea");
      if (first) { first.focus(); }
      dirty = true;
    } else if (value.indexOf("remove:") === 0 && rows) {
      event.preventDefault();
      var row = button.closest("[data-row]");
      var add = rows.querySelector("button.add");
      row.remove();
      if (add) { add.focus(); }
      dirty = true;
    }
  });

  // Autosave a draft every few seconds while something changed.
  var seconds = parseInt(form.getAttribute("data-autosave") || "0", 10);
  var status = document.getElementById("autosave-status");
  var dirty = false;
  var saving = false;
  form.addEventListener("input", function () { dirty = true; });
  form.addEventListener("change", function () { dirty = true; });
  form.addEventListener("submit", function () { dirty = false; seconds = 0; });
  function autosave() {
    if (!dirty || saving || !seconds) { return; }
    saving = true;
    dirty = false;
    var data = new FormData(form);
    data.set("action", "save");
    fetch("/form", { method: "POST", body: data, credentials: "same-origin", headers: { "X-Autosave": "1" } })
      .then(function (r) { return r.json().then(function (body) { return { status: r.status, body: body }; }); })
      .then(function (result) {
        if (result.body.ok) {
          form.querySelector("input[name=base]").value = String(result.body.revision);
          if (status) { status.textContent = "Draft saved automatically at " + result.body.at + "."; }
        } else if (result.body.reason === "conflict") {
          seconds = 0;
          if (status) { status.textContent = "Someone else saved this answer. Choose Save draft to see both versions."; }
        } else if (result.body.reason === "invalid") {
          dirty = true;
          if (status) { status.textContent = "Not saved automatically: some fields need attention. Choose Save draft to see which."; }
        } else {
          seconds = 0;
          if (status) { status.textContent = "Not saved automatically. Choose Save draft."; }
        }
      })
      .catch(function () { dirty = true; })
      .then(function () { saving = false; });
  }
  if (seconds > 0) { setInterval(autosave, seconds * 1000); }

  // Put the cursor where the reader needs it: the error summary, or a row just added.
  var summary = document.getElementById("error-summary");
  var focus = form.getAttribute("data-focus");
  if (summary) {
    summary.focus();
  } else if (focus) {
    var rowsBox = form.querySelector("[data-rows='" + focus + "']");
    var rowsAll = rowsBox ? rowsBox.querySelectorAll("[data-row]") : [];
    var target = rowsAll.length ? rowsAll[rowsAll.length - 1].querySelector("input, textarea") : null;
    if (target) { target.focus(); }
  }
})();
