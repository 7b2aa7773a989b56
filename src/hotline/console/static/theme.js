// Apply the officer's theme before the page paints (light, dark, or the system's).
(function () {
  var t = null;
  try { t = localStorage.getItem("hl-theme"); } catch (e) { t = null; }
  if (t === "light" || t === "dark") document.documentElement.setAttribute("data-theme", t);
})();
