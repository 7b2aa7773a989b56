// Log in through the JSON API (POST /api/v1/session); the station sets the session
// cookie and a CSRF cookie the console sends back in X-CSRF-Token.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("login-form");
  var err = document.getElementById("login-error");
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    err.hidden = true;
    var body = { username: form.username.value, password: form.password.value };
    if (form.totp.value) body.totp = form.totp.value;
    var r;
    try {
      r = await fetch("/api/v1/session", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
    } catch (e) {
      err.textContent = "The station did not answer. Check that it is running, then try again.";
      err.hidden = false;
      return;
    }
    if (r.ok) { window.location.assign("/"); return; }
    var msg = "Login refused (" + r.status + ").";
    try {
      var j = await r.json();
      if (j && j.error) msg = j.error.message + (j.error.hint ? " " + j.error.hint : "");
    } catch (e) { /* not JSON */ }
    err.textContent = msg;
    err.hidden = false;
  });
});
