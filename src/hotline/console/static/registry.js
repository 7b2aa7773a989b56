// The registry area of the console (see console.js for window.Hotline): the import of a
// sites file with a preview. The file goes to POST /api/v1/sites/import/preview first
// (nothing is sent or stored); only after a good preview does "Import and notify" post
// the same bytes to POST /api/v1/sites/import. Every word from the file or the station
// goes into the page with textContent.
"use strict";
(function () {
  var H = window.Hotline;
  var held = null; // {name, text} of the file that passed its preview

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  async function post(path, text) {
    // the body is the file's bytes as they are: Hotline.api would re-encode them
    var r;
    try {
      r = await fetch(path, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": H.csrf() },
        body: text,
      });
    } catch (e) {
      return { ok: false, status: 0, data: { error: { message: "The station did not answer: " + e.message, hint: "Try again." } } };
    }
    var data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401) { window.location.assign("/login"); }
    return { ok: r.ok, status: r.status, data: data };
  }

  function show(box, res, name) {
    box.replaceChildren();
    var send = document.getElementById("import-send");
    if (!res.ok) {
      held = null;
      send.hidden = true;
      box.className = "import-preview import-refused";
      var err = (res.data && res.data.error) || { message: "Refused (" + res.status + ")", hint: "" };
      box.appendChild(el("p", "REFUSED: " + name + " cannot be imported. Nothing was sent.", "error"));
      box.appendChild(el("p", err.message, "import-error"));
      if (err.hint) box.appendChild(el("p", err.hint, "muted"));
      return;
    }
    var d = res.data;
    box.className = "import-preview import-ok";
    box.appendChild(el("p", "Preview of " + name + ": " + d.count + " site" + (d.count === 1 ? "" : "s") + " to notify to " + d.recipients.join(", ") + ". Nothing sent yet.", "import-count"));
    var cats = el("ul", null, "import-categories");
    Object.keys(d.categories).sort().forEach(function (c) {
      cats.appendChild(el("li", c.replace(/_/g, " ") + ": " + d.categories[c]));
    });
    box.appendChild(cats);
    var list = el("ul", null, "import-sites");
    d.sites.forEach(function (s) {
      list.appendChild(el("li", s.site_id + ": " + s.name + " (" + s.category.replace(/_/g, " ") + ")"));
    });
    box.appendChild(list);
    if (d.count > d.sites.length) box.appendChild(el("p", "and " + (d.count - d.sites.length) + " more.", "muted"));
    send.hidden = false;
  }

  async function preview() {
    var input = document.getElementById("import-file");
    var box = document.getElementById("import-preview");
    held = null;
    document.getElementById("import-send").hidden = true;
    if (!input.files || !input.files.length) { H.toast("Choose a file first.", "error"); return; }
    var file = input.files[0];
    var text = await file.text();
    box.replaceChildren(el("p", "Checking " + file.name + "…", "muted"));
    var res = await post("/api/v1/sites/import/preview", text);
    if (res.ok) held = { name: file.name, text: text };
    show(box, res, file.name);
  }

  async function send() {
    if (!held) return;
    var btn = document.getElementById("import-send");
    var box = document.getElementById("import-preview");
    btn.setAttribute("aria-busy", "true");
    btn.disabled = true;
    var res = await post("/api/v1/sites/import", held.text);
    btn.removeAttribute("aria-busy");
    btn.disabled = false;
    if (res.ok) {
      var n = res.data.imported.length;
      box.replaceChildren(el("p", "Imported " + held.name + ": " + n + " site" + (n === 1 ? "" : "s") + " notified.", "import-done"));
      held = null;
      btn.hidden = true;
      document.getElementById("import-file").value = "";
      H.toast("Imported and notified " + n + " sites.", "ok");
      htmx.trigger(document.body, "hl-refresh-registry");
    } else {
      show(box, res, held.name);
    }
  }

  document.addEventListener("click", function (ev) {
    if (ev.target.closest("#import-preview-btn")) { ev.preventDefault(); preview(); }
    else if (ev.target.closest("#import-send")) { ev.preventDefault(); send(); }
  });
  document.addEventListener("change", function (ev) {
    if (ev.target.id === "import-file") {
      held = null;
      var s = document.getElementById("import-send");
      if (s) s.hidden = true;
      var b = document.getElementById("import-preview");
      if (b) b.replaceChildren();
    }
  });
})();
