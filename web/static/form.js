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
    box.addEventListener("change", function () { syncMilestone(box); countAnswered(); });
  });

  // Keep "Milestones answered: n of m" (overall and per objective) up to date as choices
  // are made, so a busy reader sees what is left without scrolling the whole page.
  function countAnswered() {
    var total = 0;
    form.querySelectorAll("[data-objective]").forEach(function (section) {
      var n = section.querySelectorAll("[data-milestone] input[type=radio]:checked").length;
      total += n;
      var out = document.querySelector("[data-objective-count='" + section.getAttribute("data-objective") + "']");
      if (out) { out.textContent = String(n); }
    });
    document.querySelectorAll("[data-answered-count]").forEach(function (out) { out.textContent = String(total); });
  }

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
  // Each row's Remove button names its row by position ("Remove achievement 2").
  function relabel(rows) {
    rows.querySelectorAll("[data-row]").forEach(function (row, position) {
      row.querySelectorAll("[data-row-number]").forEach(function (out) { out.textContent = String(position + 1); });
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
      // A new row is blank: it does not differ from anything (a conflict page's marks).
      copy.classList.remove("differs");
      copy.querySelectorAll(".differs-marker").forEach(function (el) { el.remove(); });
      renumber(copy, next);
      last.parentNode.insertBefore(copy, last.nextSibling);
      relabel(rows);
      var first = copy.querySelector("input, textarea");
      if (first) { first.focus(); }
      dirty = true;
    } else if (value.indexOf("remove:") === 0 && rows) {
      event.preventDefault();
      var row = button.closest("[data-row]");
      var add = rows.querySelector("button.add");
      row.remove();
      relabel(rows);
      if (add) { add.focus(); }
      dirty = true;
    }
  });

  // Autosave a draft every few seconds while something changed.
  var seconds = parseInt(form.getAttribute("data-autosave") || "0", 10);
  var status = document.getElementById("autosave-status");
  var dirty = false;  // changed since the last autosave began
  // changed since the last save that succeeded: true from the start on a page that came
  // back with the answer unsaved (refused, or a conflict to merge by hand)
  var unsaved = document.querySelector("[data-unsaved], .conflict") !== null;
  var saving = false;
  var waitingSubmit = null;  // a button pressed while an autosave was on its way
  var leaving = false;
  form.addEventListener("input", function () { dirty = true; unsaved = true; });
  form.addEventListener("change", function () { dirty = true; unsaved = true; });
  form.addEventListener("submit", function (event) {
    if (saving) {
      // Posting now would be based on the revision before the autosave on its way, and
      // come back as a conflict with oneself: send it once the autosave has answered.
      event.preventDefault();
      waitingSubmit = event.submitter || form.querySelector("button[name=action][value=save]");
      if (status) { status.textContent = "Saving…"; }
      return;
    }
    dirty = false; seconds = 0; leaving = true;
  });
  window.addEventListener("beforeunload", function (event) {
    if (unsaved && !leaving) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
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
          if (!dirty) { unsaved = false; }
          if (status) { status.textContent = "Draft saved automatically at " + result.body.at + "."; }
        } else if (result.body.reason === "conflict") {
          seconds = 0;
          if (status) { status.textContent = "Someone else saved this answer. Choose Save draft to see both versions."; }
        } else if (result.body.reason === "invalid") {
          dirty = true;
          if (status) { status.textContent = "Not saved automatically: some fields need attention. Choose Save draft to see which."; }
        } else if (result.body.reason === "session") {
          seconds = 0;
          if (status) { status.textContent = "Your session has ended, so changes are not being saved. Choose Save draft to see what you typed, then open the link from your email again."; }
        } else {
          seconds = 0;
          if (status) { status.textContent = "Not saved automatically. Choose Save draft."; }
        }
      })
      .catch(function () {
        dirty = true;
        if (status) { status.textContent = "Not saved automatically (no connection?). It will be tried again."; }
      })
      .then(function () {
        saving = false;
        if (waitingSubmit !== null) {
          var button = waitingSubmit;
          waitingSubmit = null;
          form.requestSubmit(button);
        }
      });
  }
  if (seconds > 0) { setInterval(autosave, seconds * 1000); }

  // The sticky Save/Submit bar must not hide the field that has focus (WCAG 2.4.11): the
  // browser scrolls a focused field into view only when it is wholly out of view, so one
  // half under the bar stays there.
  var bar = form.querySelector(".actions-bar");
  form.addEventListener("focusin", function (event) {
    if (!bar || bar.contains(event.target) || getComputedStyle(bar).position !== "sticky") { return; }
    var hidden = event.target.getBoundingClientRect().bottom - bar.getBoundingClientRect().top;
    if (hidden > 0) { window.scrollBy(0, hidden + 16); }
  });

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
