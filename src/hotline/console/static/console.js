// The console's core: the JSON API client (session cookie + CSRF header), live events
// (Server-Sent Events -> htmx triggers on <body>), toasts, times and countdowns, the
// alarm (sound + indicator + mute, never off), keyboard shortcuts, the idle lock and the
// theme. Areas (queue.js, threads.js, map.js, ...) build on window.Hotline.
//
// Rules for every area: a peer's words go into the page as text (textContent, or
// escaped by the server's templates), never as HTML; no inline script or style.
"use strict";
(function () {
  var H = (window.Hotline = window.Hotline || {});
  var body = document.body;

  // --- the JSON API -----------------------------------------------------------------
  function cookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return "";
  }
  H.csrf = function () { return cookie("hotline_csrf"); };

  // Call the operator API; resolves {ok, status, data}; a refusal shows a toast with the
  // station's message and hint unless opts.quiet. A 401 sends the browser to /login.
  H.api = async function (method, path, payload, opts) {
    opts = opts || {};
    var headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = H.csrf();
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (payload !== undefined && payload !== null) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    if (opts.headers) Object.assign(headers, opts.headers);
    var r;
    try { r = await fetch(path, init); } catch (e) {
      H.toast("The station did not answer: " + e.message + ". Try again.", "error");
      return { ok: false, status: 0, data: null };
    }
    var data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401 && path !== "/api/v1/session") { window.location.assign("/login"); return { ok: false, status: 401, data: data }; }
    // a sensitive action from a session whose password is too old: ask for it, retry once
    if (r.status === 403 && data && data.error && data.error.code === "reauth_required" && !opts.retried) {
      if (await H.reauth()) return H.api(method, path, payload, Object.assign({}, opts, { retried: true }));
      H.toast("Not done: the password was not given again.", "error");
      return { ok: false, status: 403, data: data };
    }
    if (!r.ok && !opts.quiet) {
      var err = data && data.error ? data.error : { message: "Refused (" + r.status + ")" };
      H.toast(err.message + (err.hint ? " " + err.hint : ""), "error");
    }
    return { ok: r.ok, status: r.status, data: data };
  };

  // A form or button with data-api="METHOD /path" calls the API. Form fields become a
  // JSON object: empty fields are left out, data-json="int|bool|list" converts. On
  // success: a toast with data-done, the event data-then (e.g. "hl-refresh-queue") on
  // <body>, and the form is reset.
  function formJSON(form) {
    var out = {};
    var els = form.elements;
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (!el.name || el.disabled) continue;
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) {
        if (el.type === "checkbox" && el.dataset.json === "bool") out[el.name] = false;
        continue;
      }
      var v = el.value;
      var kind = el.dataset.json;
      if (kind === "bool") { out[el.name] = true; continue; }
      if (v === "") continue;
      if (kind === "int") v = parseInt(v, 10);
      else if (kind === "float") v = parseFloat(v);
      else if (kind === "list") { (out[el.name] = out[el.name] || []).push(v); continue; }
      else if (kind === "json") { try { v = JSON.parse(v); } catch (e) { H.toast(el.name + " is not valid JSON", "error"); throw e; } }
      out[el.name] = v;
    }
    return out;
  }
  H.formJSON = formJSON;

  async function runApi(el, payload) {
    var spec = el.dataset.api.split(" ");
    if (el.dataset.confirm && !window.confirm(el.dataset.confirm)) return;
    el.setAttribute("aria-busy", "true");
    var res = await H.api(spec[0], spec[1], payload);
    el.removeAttribute("aria-busy");
    if (res.ok) {
      var done = el.dataset.done || "Done.";
      // 202 with an approval id: held under the two-person rule, nothing has left yet
      if (res.status === 202 && res.data && res.data.approval_id) done = "Held for approval: a second officer must approve it before it leaves.";
      H.toast(done, "ok");
      if (el.tagName === "FORM") el.reset();
      if (el.dataset.then) el.dataset.then.split(" ").forEach(function (e) { htmx.trigger(body, e, res.data); });
      body.dispatchEvent(new CustomEvent("hl-api-done", { detail: { el: el, data: res.data, status: res.status } }));
    }
    return res;
  }
  H.runApi = runApi;
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.dataset || !form.dataset.api) return;
    ev.preventDefault();
    runApi(form, formJSON(form));
  });
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("button[data-api]");
    if (!el) return;
    ev.preventDefault();
    var payload = el.dataset.body ? JSON.parse(el.dataset.body) : {};
    runApi(el, payload);
  });

  // htmx requests (fragments are GETs; a POST through htmx would carry the token too)
  document.addEventListener("htmx:configRequest", function (ev) {
    ev.detail.headers["X-CSRF-Token"] = H.csrf();
  });
  document.addEventListener("htmx:responseError", function (ev) {
    var xhr = ev.detail.xhr;
    if (xhr.status === 401) { window.location.assign("/login"); return; }
    var msg = "A view could not load (" + xhr.status + ").";
    try { var j = JSON.parse(xhr.responseText); if (j.error) msg = j.error.message + (j.error.hint ? " " + j.error.hint : ""); } catch (e) { /* html */ }
    H.toast(msg, "error");
  });

  // --- toasts -----------------------------------------------------------------------
  H.toast = function (text, kind) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var t = document.createElement("div");
    t.className = "toast toast-" + (kind || "info");
    t.textContent = text;
    box.appendChild(t);
    setTimeout(function () { t.remove(); }, kind === "error" ? 12000 : 5000);
  };

  // --- times: <time data-at> gets "12 min ago", .countdown[data-deadline] counts down
  function rel(ms) {
    var s = Math.round(Math.abs(ms) / 1000);
    var txt = s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min" : s < 172800 ? Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min" : Math.floor(s / 86400) + " d";
    return ms >= 0 ? "in " + txt : txt + " ago";
  }
  H.rel = rel;
  function mmss(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h ? h + ":" + pad(m) : m) + ":" + pad(r);
  }
  function tick() {
    var now = Date.now();
    var clock = document.getElementById("clock");
    if (clock) clock.textContent = new Date(now).toISOString().slice(11, 16) + "Z";
    document.querySelectorAll("time[data-at]").forEach(function (el) {
      var at = Number(el.dataset.at) / 1000;
      var label = el.nextElementSibling;
      if (!label || !label.classList.contains("rel")) {
        label = document.createElement("span");
        label.className = "rel muted";
        el.after(label);
      }
      label.textContent = " (" + rel(at - now) + ")";
    });
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = Number(el.dataset.deadline) / 1000 - now;
      el.textContent = left >= 0 ? mmss(left) + " left" : "OVERDUE " + mmss(left);
      el.classList.toggle("overdue", left < 0);
      var card = el.closest("[data-card]");
      if (card) card.classList.toggle("overdue", left < 0);
    });
    H.alarm.tick(now);
  }

  // --- the alarm: tone + indicator + tab title, repeating until cleared or muted ----
  var audio = null;
  var baseTitle = document.title;
  H.alarm = {
    active: {}, // key -> reason
    mutedUntil: 0,
    lastTone: 0,
    raise: function (key, reason) {
      this.active[key] = reason;
      this.render();
      this.tone(true);
    },
    clear: function (key) { delete this.active[key]; this.render(); },
    count: function () { return Object.keys(this.active).length; },
    render: function () {
      var n = this.count();
      var ind = document.getElementById("alarm-indicator");
      var mute = document.getElementById("mute");
      if (ind) {
        ind.hidden = n === 0;
        var reason = document.getElementById("alarm-reason");
        if (reason) reason.textContent = n ? Object.values(this.active)[n - 1] + (n > 1 ? " (+" + (n - 1) + ")" : "") : "";
      }
      if (mute) mute.hidden = n === 0;
      body.classList.toggle("alarming", n > 0);
      document.title = (n ? "(" + n + ") ALARM · " : "") + baseTitle;
    },
    tone: function (force) {
      var now = Date.now();
      if (now < this.mutedUntil || this.count() === 0) return;
      if (!force && now - this.lastTone < 4000) return;
      this.lastTone = now;
      try {
        audio = audio || new (window.AudioContext || window.webkitAudioContext)();
        if (audio.state === "suspended") { audio.resume(); var sb = document.getElementById("sound-banner"); if (sb) sb.hidden = false; }
        [0, 0.25].forEach(function (t) {
          var o = audio.createOscillator(), g = audio.createGain();
          o.frequency.value = 880; g.gain.value = 0.15;
          o.connect(g); g.connect(audio.destination);
          o.start(audio.currentTime + t); o.stop(audio.currentTime + t + 0.18);
        });
      } catch (e) { /* no audio device: the indicator still shows */ }
    },
    tick: function (now) {
      var mute = document.getElementById("mute");
      if (mute && !mute.hidden) {
        mute.textContent = now < this.mutedUntil ? "Muted " + mmss(this.mutedUntil - now) + " (+5 min)" : "Mute 5 min";
      }
      this.tone(false);
    },
    mute: function (minutes) {
      this.mutedUntil = Math.max(Date.now(), this.mutedUntil) + minutes * 60000;
    },
  };
  document.addEventListener("click", function (ev) {
    if (ev.target.id === "mute") H.alarm.mute(5);
    if (ev.target.id === "sound-enable") {
      try { audio = audio || new AudioContext(); audio.resume(); } catch (e) { /* none */ }
      document.getElementById("sound-banner").hidden = true;
    }
  });

  // --- live events: each SSE event becomes "hl-<type with dashes>" and "hl-any" ------
  H.handlers = {};
  H.on = function (type, fn) { (H.handlers[type] = H.handlers[type] || []).push(fn); };
  function connect() {
    var meta = document.querySelector('meta[name="hl-events"]');
    var types = meta ? JSON.parse(meta.content) : [];
    var es = new EventSource("/api/v1/events");
    var banner = document.getElementById("stream-banner");
    var wasDown = false;
    es.onopen = function () {
      if (banner) banner.hidden = true;
      body.dataset.stream = "open";
      if (wasDown) htmx.trigger(body, "hl-resync");
      wasDown = false;
    };
    es.onerror = function () {
      if (banner) banner.hidden = false;
      body.dataset.stream = "lost";
      wasDown = true;
      if (es.readyState === EventSource.CLOSED) { setTimeout(connect, 2000); }
    };
    types.forEach(function (type) {
      es.addEventListener(type, function (ev) {
        var data = {};
        try { data = JSON.parse(ev.data); } catch (e) { data = {}; }
        (H.handlers[type] || []).forEach(function (fn) { try { fn(data, type); } catch (e) { console.error(e); } });
        htmx.trigger(body, "hl-" + type.replace(/[._]/g, "-"), data);
        htmx.trigger(body, "hl-any", { type: type });
      });
    });
    H.events = es;
  }

  // --- keyboard: H.keys.bind("a", "Acknowledge", fn); sequences "g t"; a handler that
  // returns false passes the key on to the next binding of the same key ------------
  var bindings = [];
  var pending = "";
  H.keys = {
    // opts.first: asked before the bindings already made for the same key
    bind: function (seq, label, fn, opts) {
      var b = { seq: seq, label: label, fn: fn };
      if (opts && opts.first) bindings.unshift(b); else bindings.push(b);
    },
    list: function () { return bindings.slice(); },
  };
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) {
      if (ev.key === "Escape") t.blur();
      return;
    }
    var seq = pending ? pending + " " + ev.key : ev.key;
    var exact = bindings.filter(function (b) { return b.seq === seq; });
    var prefix = bindings.some(function (b) { return b.seq.indexOf(seq + " ") === 0; });
    // several areas may bind one key: the first whose handler does not return false acts
    if (exact.length) {
      ev.preventDefault(); pending = "";
      for (var i = 0; i < exact.length; i++) { if (exact[i].fn(ev) !== false) break; }
      return;
    }
    pending = prefix ? seq : "";
    if (prefix) ev.preventDefault();
  });
  H.keys.bind("?", "Show the keyboard shortcuts", function () {
    var dl = document.getElementById("keys-list");
    var dialog = document.getElementById("keys");
    if (!dl || !dialog) return;
    dl.replaceChildren();
    bindings.forEach(function (b) {
      var dt = document.createElement("dt"); var kbd = document.createElement("kbd");
      kbd.textContent = b.seq; dt.appendChild(kbd);
      var dd = document.createElement("dd"); dd.textContent = b.label;
      dl.append(dt, dd);
    });
    dialog.showModal();
  });

  // --- tabs: remembered in the URL's #fragment; "g <key>" opens one -----------------
  function openTab(id) {
    var btn = document.getElementById("tab-" + id);
    if (!btn) return;
    document.querySelectorAll('[role="tab"]').forEach(function (b) { b.setAttribute("aria-selected", String(b === btn)); });
    if (location.hash !== "#" + id) history.replaceState(null, "", "#" + id);
    htmx.trigger(btn, "click");
  }
  H.openTab = openTab;
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest('[role="tab"][data-tab]');
    if (!btn || !ev.isTrusted) return;
    document.querySelectorAll('[role="tab"]').forEach(function (b) { b.setAttribute("aria-selected", String(b === btn)); });
    history.replaceState(null, "", "#" + btn.dataset.tab);
  });
  document.querySelectorAll('[role="tab"][data-key]').forEach(function (btn) {
    H.keys.bind("g " + btn.dataset.key, "Open " + btn.textContent.trim(), function () { openTab(btn.dataset.tab); });
  });

  // --- details panel: anything with data-details="/console/..." opens there ----------
  H.details = function (url) {
    htmx.ajax("GET", url, { target: "#details", swap: "innerHTML" });
  };
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("[data-details]");
    if (!el || ev.target.closest("button[data-api], a[href]:not([data-details])")) return;
    H.details(el.dataset.details);
  });

  // --- idle lock: after data-idle-lock-s without input, a password is asked again ---
  var idleLimit = Number(body.dataset.idleLockS || 0) * 1000;
  var lastInput = Date.now();
  ["keydown", "pointerdown", "wheel", "touchstart"].forEach(function (e) {
    document.addEventListener(e, function () { lastInput = Date.now(); }, { passive: true });
  });
  function checkIdle() {
    var lock = document.getElementById("lock");
    if (!lock || !idleLimit || !lock.hidden) return;
    if (Date.now() - lastInput >= idleLimit) {
      showLock("Locked after inactivity", "Enter your password to go on.", false);
    }
  }
  H.lock = function () { lastInput = 0; checkIdle(); };
  // the password again, for a sensitive action: resolves true once given, false on Cancel
  var waiters = [];
  function showLock(title, why, cancellable) {
    document.getElementById("lock-title").textContent = title;
    document.getElementById("lock-why").textContent = why;
    document.getElementById("lock-cancel").hidden = !cancellable;
    document.getElementById("lock").hidden = false;
    body.classList.add("locked");
    document.getElementById("lock-password").focus();
  }
  H.reauth = function () {
    return new Promise(function (resolve) {
      waiters.push(resolve);
      showLock("Your password again", "Approving, suspending and changing peers or accounts need your password again.", true);
    });
  };
  function unlocked(ok) {
    document.getElementById("lock").hidden = true;
    body.classList.remove("locked");
    var w = waiters; waiters = [];
    w.forEach(function (resolve) { resolve(ok); });
  }
  document.addEventListener("click", function (ev) {
    if (ev.target.id === "lock-cancel") { lockForm.reset(); unlocked(false); }
  });
  var lockForm = document.getElementById("lock-form");
  if (lockForm) lockForm.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    var payload = { username: body.dataset.username, password: lockForm.password.value };
    if (lockForm.totp.value) payload.totp = lockForm.totp.value;
    var res = await H.api("POST", "/api/v1/session", payload, { quiet: true });
    var err = document.getElementById("lock-error");
    if (res.ok) {
      lockForm.reset(); err.hidden = true;
      lastInput = Date.now();
      unlocked(true);
      htmx.trigger(body, "hl-resync");
    } else {
      err.textContent = res.data && res.data.error ? res.data.error.message : "Refused.";
      err.hidden = false;
    }
  });

  // --- theme and logout ----------------------------------------------------------------
  document.addEventListener("click", async function (ev) {
    if (ev.target.id === "theme-toggle") {
      var root = document.documentElement;
      var dark = root.getAttribute("data-theme") === "dark" ||
        (!root.getAttribute("data-theme") && window.matchMedia("(prefers-color-scheme: dark)").matches);
      var next = dark ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { localStorage.setItem("hl-theme", next); } catch (e) { /* private mode */ }
    }
    if (ev.target.id === "logout") {
      await H.api("DELETE", "/api/v1/session", null, { quiet: true });
      window.location.assign("/login");
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    connect();
    tick();
    setInterval(tick, 1000);
    setInterval(checkIdle, 1000);
    var first = (location.hash || "").slice(1);
    if (!body.dataset.wall) openTab(document.getElementById("tab-" + first) ? first : "threads");
  });
  document.addEventListener("htmx:afterSwap", function () { tick(); });
})();
