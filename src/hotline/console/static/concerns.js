// The concerns area of the console (window.Hotline: console.js): the answer to a concern
// (the other steps are data-api buttons). The answer is a concern step sent with
// POST /api/v1/notices; its body comes from the server (data-concern-answer), the text
// from the officer. Nothing from the page is ever inserted as HTML.
"use strict";
(function () {
  var H = window.Hotline;
  document.addEventListener("submit", async function (ev) {
    var form = ev.target;
    if (!form.dataset || !form.dataset.concernAnswer) return;
    ev.preventDefault();
    var body = JSON.parse(form.dataset.concernAnswer);
    var text = form.elements.text.value.trim();
    if (!text) { H.toast("Write the answer first.", "error"); return; }
    body.notice.text = text;
    var btn = form.querySelector("button[type=submit]");
    btn.disabled = true;
    form.setAttribute("aria-busy", "true");
    var res = await H.api("POST", "/api/v1/notices", body);
    form.removeAttribute("aria-busy");
    btn.disabled = false;
    if (res.ok) {
      H.toast("Answer sent.", "ok");
      form.reset();
      htmx.trigger(document.body, "hl-refresh-concerns");
    }
  });
})();
