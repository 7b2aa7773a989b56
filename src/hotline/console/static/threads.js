// The threads area of the console (see console.js for window.Hotline): the selected
// card, Reply, the composer's live word count against the channel's brevity limit for
// FLASH and IMMEDIATE (refused here before the station refuses it), and the keys r
// (reply / focus the composer) and c (compose).
// A peer's words only ever go in as textContent.
"use strict";
(function () {
  var H = window.Hotline;
  if (!H) return;
  var body = document.body;
  var selected = null; // the message id of the selected card

  function words(text) {
    var t = text.trim();
    return t ? t.split(/\s+/).length : 0;
  }
  function composer() { return document.getElementById("composer"); }
  function brief(form) {
    var p = form.elements.precedence ? form.elements.precedence.value : "ROUTINE";
    return p === "FLASH" || p === "IMMEDIATE";
  }
  // the word count line, and whether the text is over the limit for its precedence
  function count(form) {
    var text = form.elements.text.value;
    var n = words(text);
    var limit = Number(form.dataset.brevity || 0);
    var line = document.getElementById("composer-count");
    var over = brief(form) && limit > 0 && n > limit;
    if (line) {
      line.textContent = n + (n === 1 ? " word" : " words") +
        (brief(form) && limit ? " of at most " + limit + " for " + form.elements.precedence.value : "") +
        (over ? " (too long)" : "");
      line.classList.toggle("error", over);
    }
    if (!over) showError(null);
    return { n: n, limit: limit, over: over };
  }
  function showError(text) {
    var el = document.getElementById("composer-error");
    if (!el) return;
    el.hidden = !text;
    el.textContent = text || "";
  }

  document.addEventListener("input", function (ev) {
    var form = ev.target.form;
    if (form && form.id === "composer") count(form);
  });
  document.addEventListener("change", function (ev) {
    var form = ev.target.form;
    if (form && form.id === "composer") count(form);
  });
  // refuse a FLASH or IMMEDIATE text over the limit before console.js sends it
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.id !== "composer") return;
    var c = count(form);
    if (c.over) {
      ev.preventDefault();
      ev.stopPropagation();
      showError("Too long for " + form.elements.precedence.value + ": " + c.n + " words, this channel allows at most " +
        c.limit + ". Shorten it, or send the detail at PRIORITY or ROUTINE after it.");
      form.elements.text.focus();
    }
  }, true);

  function clearReply() {
    var hidden = document.getElementById("composer-reply");
    var box = document.getElementById("composer-replying");
    if (hidden) hidden.value = "";
    if (box) box.hidden = true;
  }
  function replyTo(card) {
    var form = composer();
    if (!form || !card) return;
    document.getElementById("composer-reply").value = card.dataset.messageId;
    document.getElementById("composer-reply-summary").textContent = card.dataset.summary || card.dataset.messageId;
    document.getElementById("composer-replying").hidden = false;
    form.elements.text.focus();
  }
  function select(card) {
    document.querySelectorAll(".thread-card.selected").forEach(function (c) {
      c.classList.remove("selected");
      c.removeAttribute("aria-current");
    });
    if (!card) { selected = null; return; }
    card.classList.add("selected");
    card.setAttribute("aria-current", "true");
    selected = card.dataset.messageId;
  }

  document.addEventListener("click", function (ev) {
    var reply = ev.target.closest(".reply-button");
    if (reply) {
      ev.stopPropagation(); // not the details panel: the composer
      var card = reply.closest(".thread-card");
      select(card);
      replyTo(card);
      return;
    }
    if (ev.target.id === "composer-reply-cancel") { clearReply(); return; }
    var c = ev.target.closest(".thread-card");
    if (c && !ev.target.closest("button")) select(c);
  }, true);

  // after a send: clear the reply (console.js says whether it was sent or held)
  body.addEventListener("hl-api-done", function (ev) {
    var d = ev.detail || {};
    if (!d.el || d.el.id !== "composer") return;
    clearReply();
    count(d.el);
  });
  // the cards are swapped in live: keep the selection
  document.addEventListener("htmx:afterSwap", function (ev) {
    if (!selected || !ev.detail || !ev.detail.target || ev.detail.target.id !== "thread-cards") return;
    var card = document.querySelector('.thread-card[data-message-id="' + CSS.escape(selected) + '"]');
    if (card) select(card);
  });
  // an unknown channel or one not ours to read: show the station's words in the pane
  document.addEventListener("htmx:beforeSwap", function (ev) {
    var xhr = ev.detail.xhr;
    if (!xhr || (xhr.status !== 404 && xhr.status !== 403)) return;
    var path = ev.detail.pathInfo && ev.detail.pathInfo.requestPath || "";
    if (path.indexOf("/console/thread") === 0) { ev.detail.shouldSwap = true; ev.detail.isError = false; }
  });

  // asked first: in a thread, r replies to its selected card; else the details' reply
  H.keys.bind("r", "Reply to the selected message in the thread (or in the details)", function () {
    var form = composer();
    var card = form && selected && document.querySelector('.thread-card[data-message-id="' + CSS.escape(selected) + '"]');
    if (!card) return false;
    replyTo(card);
  }, { first: true });
  // asked last: with nothing selected anywhere, r writes in the thread's composer
  H.keys.bind("r", "Write in the thread's composer", function () {
    var form = composer();
    if (!form) return false;
    form.elements.text.focus();
  });
  H.keys.bind("c", "Compose a new message on this channel", function () {
    var form = composer();
    if (!form) return;
    clearReply();
    form.elements.text.focus();
  });
})();
