// Progressive enhancement only: every page works without this file.
// - auto-refresh of pages that ask for it (body[data-refresh]), opt-in, remembered;
// - confirmation of destructive buttons (data-confirm);
// - a "select all" box for bulk actions.
(function () {
  "use strict";
  var body = document.body;
  var seconds = parseInt(body.getAttribute("data-refresh") || "0", 10);
  var box = document.getElementById("auto-refresh");
  var KEY = "stalwart.autoRefresh";

  function refresh() {
    if (!box || !box.checked || document.hidden) return;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Requested-With": "refresh" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        var main = document.getElementById("main");
        if (fresh && main) main.replaceWith(document.adoptNode(fresh));
        bind();
      })
      .catch(function () { /* offline for a moment: try again next tick */ });
  }

  function bind() {
    document.querySelectorAll("[data-confirm]").forEach(function (el) {
      if (el.dataset.bound) return;
      el.dataset.bound = "1";
      el.addEventListener("click", function (ev) {
        if (!window.confirm(el.getAttribute("data-confirm"))) ev.preventDefault();
      });
    });
    document.querySelectorAll("input.select-all").forEach(function (all) {
      all.hidden = false;
      if (all.dataset.bound) return;
      all.dataset.bound = "1";
      all.addEventListener("change", function () {
        document.querySelectorAll('input[name="job_id"]').forEach(function (c) { c.checked = all.checked; });
      });
    });
  }

  if (seconds > 0 && box) {
    box.parentElement.hidden = false;
    box.checked = localStorage.getItem(KEY) === "1";
    box.addEventListener("change", function () { localStorage.setItem(KEY, box.checked ? "1" : "0"); });
    setInterval(refresh, seconds * 1000);
  }
  bind();
})();
