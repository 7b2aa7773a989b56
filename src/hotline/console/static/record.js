// The record area of the console (window.Hotline: console.js).
// The record tab refreshes itself (hx-trigger); an open link details panel is reloaded
// when that line's state changes, so its charts and words stay current.
"use strict";
(function () {
  document.addEventListener("DOMContentLoaded", function () {
    var H = window.Hotline;
    if (!H || !H.on) return;
    H.on("link.state", function (data) {
      var open = document.querySelector("#details .link-details");
      if (open && data && open.dataset.peer === data.peer) {
        H.details("/console/link/" + encodeURIComponent(data.peer));
      }
    });
  });
})();
