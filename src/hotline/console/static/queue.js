// The queue area of the console (see console.js for window.Hotline): the action queue's
// selection and keys (j/k move, Enter opens, a acknowledges, r reply, p pass on), marking
// a received message read when its details open, and the alarm rules: a FLASH message
// received or a CRITICAL alarm raised sounds the alarm at once; the queue, reloaded on
// every event, is then the truth (each unacknowledged FLASH card keeps it raised, and an
// acknowledgement, here or by another officer, clears it).
// A peer's words are never put in the page here: only ids and our own labels.
"use strict";
(function () {
  var H = window.Hotline;
  if (!H) return;
  var body = document.body;
  var selectedKey = null;
  var marked = {};
  //: alarm keys this script raised (cleared again when the queue no longer has them)
  var ours = {};
  //: alarm keys the last load of the queue listed
  var seen = {};

  function queueEl() { return document.getElementById("queue"); }
  function cards() {
    var q = queueEl();
    return q ? Array.prototype.slice.call(q.querySelectorAll("[data-card]")) : [];
  }
  function selected() {
    var all = cards();
    for (var i = 0; i < all.length; i++) if (all[i].dataset.key === selectedKey) return all[i];
    return null;
  }
  function select(card) {
    cards().forEach(function (c) {
      var on = c === card;
      c.classList.toggle("selected", on);
      if (on) c.setAttribute("aria-current", "true"); else c.removeAttribute("aria-current");
    });
    selectedKey = card ? card.dataset.key : null;
    if (card) card.scrollIntoView({ block: "nearest" });
  }
  function move(step) {
    var all = cards();
    if (!all.length) return;
    var i = all.indexOf(selected());
    var next = i < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, i + step));
    select(all[next]);
  }
  H.queue = { select: select, selected: selected, cards: cards };

  function refreshQueue() {
    if (queueEl()) htmx.ajax("GET", "/console/queue", { target: "#queue", swap: "innerHTML" });
  }

  // --- the alarm ----------------------------------------------------------------------
  function raise(key, reason) {
    ours[key] = true;
    if (!(key in H.alarm.active)) H.alarm.raise(key, reason);
  }
  function clear(key) {
    delete ours[key];
    if (key in H.alarm.active) H.alarm.clear(key);
  }
  // after each load of the queue: its FLASH cards raise the alarm; keys it no longer
  // lists clear (when this officer is one who acknowledges: otherwise events decide)
  function reconcile() {
    var list = queueEl() && queueEl().querySelector("[data-queue]");
    if (!list) return;
    var present = {};
    list.querySelectorAll("[data-alarm]").forEach(function (c) {
      present[c.dataset.alarm] = true;
      raise(c.dataset.alarm, c.dataset.alarmReason || "FLASH");
    });
    if (list.dataset.alarmAuthority !== "1") return;
    // only what an earlier load listed: an event may be newer than this load
    Object.keys(ours).forEach(function (key) { if (!present[key] && seen[key]) clear(key); });
    seen = present;
  }
  H.on("message.received", function (d) {
    if (d && d.precedence === "FLASH" && d.ack_required !== false && d.message_id) {
      raise("msg:" + d.message_id, "FLASH from " + (d.peer || "a peer"));
    }
  });
  H.on("message.acknowledged", function (d) { if (d && d.message_id) clear("msg:" + d.message_id); });
  H.on("alarm.raised", function (d) {
    if (d && d.severity === "CRITICAL") raise("live:" + d.kind + ":" + (d.ref || ""), "CRITICAL " + d.kind);
  });
  H.on("alarm_acknowledged", function (d) {
    if (!d) return;
    clear("alarm:" + d.id);
    clear("live:" + d.kind + ":" + (d.ref || ""));
  });

  // --- after a load: keep the selection, reconcile the alarm, mark a message read -----
  document.addEventListener("htmx:afterSettle", function (ev) {
    var target = ev.detail && ev.detail.target;
    if (!target) return;
    if (target.id === "queue") {
      var again = selected();
      select(again);
      reconcile();
      return;
    }
    var details = document.getElementById("details");
    var panel = details && details.querySelector("[data-mark-read]");
    if (!panel) return;
    var url = panel.dataset.markRead;
    if (marked[url]) return;
    marked[url] = true; // the first read per officer counts: once per page is enough
    H.api("POST", url, null, { quiet: true }).then(function (res) { if (!res.ok) delete marked[url]; });
  });
  body.addEventListener("hl-refresh-queue", refreshQueue);
  // a click on a card selects it (console.js opens its details)
  document.addEventListener("click", function (ev) {
    var card = ev.target.closest && ev.target.closest("#queue [data-card]");
    if (card) select(card);
  });

  // --- keys ---------------------------------------------------------------------------
  H.keys.bind("j", "Next item in the action queue", function () { move(1); });
  H.keys.bind("k", "Previous item in the action queue", function () { move(-1); });
  H.keys.bind("Enter", "Open the selected item's details", function (ev) {
    // Enter on a focused control keeps its own meaning
    var t = ev && ev.target;
    if (t && t.closest && t.closest("button, a[href], summary")) { t.closest("button, a[href], summary").click(); return; }
    var c = selected();
    if (c && c.dataset.details) H.details(c.dataset.details);
  });
  H.keys.bind("a", "Acknowledge the selected item", function () {
    var c = selected();
    var btn = c && c.querySelector("button[data-main][data-api]");
    if (!btn) {
      var open = document.getElementById("details-ack");
      if (open) { H.runApi(open, JSON.parse(open.dataset.body || "{}")); return; }
      H.toast("Nothing to acknowledge: select a message with j / k.", "error");
      return;
    }
    H.runApi(btn, JSON.parse(btn.dataset.body || "{}"));
  });
  function openForm(id) {
    var box = document.getElementById(id);
    if (!box) { H.toast("Open a message first (Enter on a queue item).", "error"); return; }
    box.open = true;
    var field = box.querySelector("textarea, input:not([type=hidden])");
    if (field) field.focus();
  }
  H.keys.bind("r", "Reply to the message in the details", function () {
    if (!document.getElementById("details-reply")) return false; // the thread's reply, if any
    openForm("details-reply");
  });
  H.keys.bind("p", "Pass on (disseminate) the message in the details", function () { openForm("details-pass-on"); });
})();
