// The search area of the console (window.Hotline: console.js): "/" opens the Search tab
// and puts the cursor in its query box; Enter or Space on a result opens its details.
"use strict";
(function () {
  var H = window.Hotline;
  if (!H || !H.keys) return;

  function focusQuery() {
    var q = document.getElementById("search-q");
    if (!q) return false;
    q.focus();
    q.select();
    return true;
  }

  H.keys.bind("/", "Search messages", function () {
    var open = document.getElementById("search-q");
    if (open) { focusQuery(); return; }
    var once = function () {
      if (focusQuery()) document.body.removeEventListener("htmx:afterSettle", once);
    };
    document.body.addEventListener("htmx:afterSettle", once);
    H.openTab("search");
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter" && ev.key !== " ") return;
    var card = ev.target.closest && ev.target.closest(".hit[data-details]");
    if (!card || ev.target !== card) return;
    ev.preventDefault();
    H.details(card.dataset.details);
  });
})();
