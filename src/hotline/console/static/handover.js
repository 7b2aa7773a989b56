// The handover area of the console (window.Hotline: console.js). The tab's forms and
// buttons are data-api (console.js sends them); the history refreshes on the
// handover.written and handover.acknowledged events. A banner's "Open the handover"
// button opens the tab.
"use strict";
(function () {
  var H = window.Hotline;
  if (!H) return;
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("button[data-open-tab]");
    if (!btn || !H.openTab) return;
    H.openTab(btn.dataset.openTab);
  });
})();
