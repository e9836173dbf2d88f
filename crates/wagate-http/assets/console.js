// wagate console: pages work without this; it only keeps them live. When the event log moves
// (new messages, status changes), the page's main content is fetched again and swapped in place,
// keeping what is being typed.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || main.dataset.live !== "true" || !window.EventSource) return;
  // One fetch at a time; a change that comes during one asks for another after it, so the
  // last change is always shown.
  var pending = false;
  var again = false;
  function done() {
    pending = false;
    if (again) {
      again = false;
      refresh();
    }
  }
  function refresh() {
    if (pending) {
      again = true;
      return;
    }
    pending = true;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Wagate-Live": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html) swap(html);
        done();
      })
      .catch(done);
  }
  function swap(html) {
    var next = new DOMParser().parseFromString(html, "text/html").getElementById("main");
    if (!next) return;
    var typing = main.querySelector("textarea");
    var draft = typing ? typing.value : null;
    var list = main.querySelector(".messages");
    var atEnd = list ? list.scrollTop + list.clientHeight >= list.scrollHeight - 8 : true;
    main.innerHTML = next.innerHTML;
    var box = main.querySelector("textarea");
    if (box && draft) box.value = draft;
    list = main.querySelector(".messages");
    if (list && atEnd) list.scrollTop = list.scrollHeight;
  }
  // From the page's own cursor: nothing written after it was rendered is missed.
  var source = new EventSource("/console/live?after=" + encodeURIComponent(main.dataset.after || ""));
  source.addEventListener("change", refresh);
  // What writes no event (a hook's delivery attempts) is followed by looking again now and then.
  var poll = parseInt(main.dataset.poll || "0", 10);
  if (poll > 0) setInterval(refresh, poll);
  var list = main.querySelector(".messages");
  if (list) list.scrollTop = list.scrollHeight;
})();

// The template editor's preview: the body with its variables filled with the examples.
(function () {
  "use strict";
  var form = document.querySelector("form [data-preview]");
  if (!form) return;
  function field(name) {
    var el = document.querySelector("[data-preview=" + name + "]");
    return el ? el.value : "";
  }
  function show(name, text) {
    var el = document.querySelector("[data-shows=" + name + "]");
    if (el) el.textContent = text;
  }
  function update() {
    var examples = field("examples").split(",").map(function (s) { return s.trim(); });
    var body = field("body").replace(/\{\{(\d+)\}\}/g, function (all, n) {
      return examples[n - 1] || all;
    });
    var format = field("header_format");
    // A media header shows as its kind: the file comes with each send.
    show("header", format === "TEXT" ? field("header") : format ? "[" + format.toLowerCase() + "]" : "");
    show("body", body || "The body appears here.");
    show("footer", field("footer"));
    var buttons = field("buttons").split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    if (field("url_text")) buttons.push("\uD83D\uDD17 " + field("url_text"));
    if (field("phone_text")) buttons.push("\uD83D\uDCDE " + field("phone_text"));
    show("buttons", buttons.map(function (b) { return "[ " + b + " ]"; }).join("  "));
  }
  document.querySelectorAll("[data-preview]").forEach(function (el) {
    el.addEventListener("input", update);
    el.addEventListener("change", update);
  });
  update();
})();

// The template picker: a field per variable of the chosen template ({{1}}, {{2}}, …) and the
// body as it will read (they are sent as param1, param2, …; without JavaScript, the form's
// comma-separated `params` field is used instead).
(function () {
  "use strict";
  var picker = document.querySelector("select[name=template]");
  if (!picker) return;
  var form = picker.form;
  var params = form.querySelector("[data-params]");
  var box = form.querySelector("[data-variables]");
  var preview = form.querySelector("[data-template-preview]");
  function body() {
    var option = picker.options[picker.selectedIndex];
    return option ? option.getAttribute("data-body") || "" : "";
  }
  function values() {
    return Array.prototype.map.call(box.querySelectorAll("input"), function (i) { return i.value; });
  }
  function show() {
    var v = values();
    preview.textContent = body().replace(/\{\{(\d+)\}\}/g, function (all, n) { return v[n - 1] || all; });
  }
  function fields() {
    var count = 0;
    body().replace(/\{\{(\d+)\}\}/g, function (all, n) { count = Math.max(count, parseInt(n, 10)); return all; });
    box.textContent = "";
    for (var i = 1; i <= count; i++) {
      var input = document.createElement("input");
      input.setAttribute("aria-label", "Value of {{" + i + "}}");
      input.setAttribute("placeholder", "{{" + i + "}}");
      input.setAttribute("data-variable", String(i));
      input.setAttribute("name", "param" + i);
      input.addEventListener("input", show);
      box.appendChild(input);
    }
    params.hidden = true;
    show();
  }
  picker.addEventListener("change", fields);
  fields();
})();
