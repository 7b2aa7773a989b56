// The map area of the console (window.Hotline: console.js).
//
// Draws every `.map[data-map]` element (the MAP tab's, data-map="tab"; the wall's,
// data-map="wall", read-only) with MapLibre GL JS, loaded lazily from /static/vendor the
// first time a map is shown. Nothing comes from another origin: no tiles, glyphs or
// sprites; the basemap is Natural Earth 1:10m (world-atlas TopoJSON, converted here by
// topojson-client) and every label is DOM text (the details panel, the conflict list,
// the canvas's title on hover). Sources are GeoJSON from /console/map/{sites,activities,
// conflicts}, refreshed in place (setData) when a notice, a concern step or a conflict
// alarm arrives. Rings in metres: each feature's `k` is its size in pixels at zoom 0;
// the layers double it per zoom level (service/mapview.py).
//
// For tests and bench/console.py: window.Hotline.map is the tab's MapLibre map (and
// Hotline.mapData the GeoJSON it draws);
// body.dataset.mapReady = "1" once a map has drawn its data; each map element carries
// data-sites, data-activities, data-activities-shown and data-conflicts (counts).
"use strict";
(function () {
  var H = (window.Hotline = window.Hotline || {});
  var body = document.body;
  var VENDOR = "/static/vendor/";
  var SOURCES = ["sites", "activities", "conflicts"];
  var NOTICE_TYPES = { site_notice: 1, activity_notice: 1, concern: 1 };
  // the same colours as static/map.css (.sw-*) and the legend's words
  var SITE_COLOURS = {
    nuclear_power_plant: "#c026d3",
    power_station: "#d97706",
    substation: "#a16207",
    dam: "#2563eb",
    water_works: "#0891b2",
    hospital: "#dc2626",
    school: "#16a34a",
    humanitarian_office: "#7c3aed",
    humanitarian_warehouse: "#4c1d95",
  };
  var OTHER = "#6b7280";
  var EMPTY = { type: "FeatureCollection", features: [] };
  // layer groups the toggles switch (data-map-layer="...")
  var GROUPS = {
    buffers: ["site-ring"],
    sites: ["site-poly", "site-poly-line", "site-point"],
    activities: ["act-fill", "act-line", "act-corridor", "act-ring", "act-dot"],
    conflicts: ["conflict-line", "conflict-point"],
  };
  // clickable layers, the most specific first (a site's dot before the conflict line that
  // ends on it, the line before the rings and areas it crosses)
  var CLICKABLE = ["site-point", "act-dot", "conflict-point", "conflict-line", "act-corridor",
    "act-ring", "act-fill", "site-poly"];
  var TIMED = ["act-fill", "act-line", "act-corridor", "act-ring", "act-dot", "conflict-line",
    "conflict-point"];

  var maps = []; // {el, map, wall, data, time}
  var libs = null;
  var basemap = null;

  function script(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("could not load " + src)); };
      document.head.appendChild(s);
    });
  }

  function loadLibs() {
    if (!libs) {
      libs = Promise.all([
        window.maplibregl ? null : script(VENDOR + "maplibre-gl-csp.js"),
        window.topojson ? null : script(VENDOR + "topojson-client.min.js"),
      ]).then(function () {
        // the CSP has worker-src 'self' (no blob:): the worker is a file of its own
        window.maplibregl.setWorkerUrl(VENDOR + "maplibre-gl-csp-worker.js");
      });
      libs.catch(function () { libs = null; });
    }
    return libs;
  }

  function loadBasemap() {
    if (!basemap) {
      basemap = fetch(VENDOR + "countries-10m.json", { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error("basemap " + r.status); return r.json(); })
        .then(function (topo) {
          var tj = window.topojson;
          var countries = topo.objects.countries;
          return {
            land: tj.feature(topo, topo.objects.land || countries),
            borders: tj.mesh(topo, countries, function (a, b) { return a !== b; }),
          };
        });
      basemap.catch(function () { basemap = null; });
    }
    return basemap;
  }

  // a length in metres, given as pixels at zoom 0 in the feature's "k", at every zoom
  function metres(scale) {
    var k = ["*", ["get", "k"], scale || 1];
    return ["interpolate", ["exponential", 2], ["zoom"], 0, k, 24, ["*", k, 16777216]];
  }

  function siteColour() {
    var m = ["match", ["get", "cat"]];
    Object.keys(SITE_COLOURS).forEach(function (c) { m.push(c, SITE_COLOURS[c]); });
    m.push(OTHER);
    return m;
  }

  function style(base) {
    var geo = function (data) { return { type: "geojson", data: data }; };
    // the basemap is context at 1:10m: tiled up to zoom 6 and overzoomed beyond, which
    // keeps the worker's first tiling short (about 150 m precision at any zoom)
    var basemapSource = function (data) { return { type: "geojson", data: data, maxzoom: 6, tolerance: 0.6 }; };
    var isPoint = ["==", ["geometry-type"], "Point"];
    var isLine = ["==", ["geometry-type"], "LineString"];
    var isPoly = ["==", ["geometry-type"], "Polygon"];
    var nuc = ["get", "nuc"];
    return {
      version: 8,
      // no glyphs, no sprite: nothing is fetched for the style
      sources: {
        land: basemapSource(base.land), borders: basemapSource(base.borders),
        sites: geo(EMPTY), activities: geo(EMPTY), conflicts: geo(EMPTY),
      },
      layers: [
        { id: "water", type: "background", paint: { "background-color": "#b9d3e6" } },
        { id: "land", type: "fill", source: "land", paint: { "fill-color": "#eeebe3" } },
        { id: "borders", type: "line", source: "borders", paint: { "line-color": "#8a8f98", "line-width": 0.8 } },
        { id: "site-ring", type: "circle", source: "sites", filter: isPoint, paint: {
          "circle-radius": metres(), "circle-color": siteColour(), "circle-opacity": 0.08,
          "circle-stroke-color": siteColour(), "circle-stroke-width": ["case", nuc, 3, 1.2],
          "circle-pitch-alignment": "map", "circle-pitch-scale": "map" } },
        { id: "site-poly", type: "fill", source: "sites", filter: isPoly, paint: {
          "fill-color": siteColour(), "fill-opacity": 0.3 } },
        { id: "site-poly-line", type: "line", source: "sites", filter: isPoly, paint: {
          "line-color": siteColour(), "line-width": ["case", nuc, 3, 1.5] } },
        { id: "act-fill", type: "fill", source: "activities", filter: isPoly, paint: {
          "fill-color": "#f97316", "fill-opacity": 0.3 } },
        { id: "act-line", type: "line", source: "activities", filter: isPoly, paint: {
          "line-color": "#9a3412", "line-width": 1.5 } },
        { id: "act-corridor", type: "line", source: "activities", filter: isLine, paint: {
          "line-color": "#f97316", "line-opacity": 0.45, "line-width": metres() } },
        { id: "act-ring", type: "circle", source: "activities", filter: isPoint, paint: {
          "circle-radius": metres(), "circle-color": "#f97316", "circle-opacity": 0.25,
          "circle-stroke-color": "#9a3412", "circle-stroke-width": 1.5,
          "circle-pitch-alignment": "map" } },
        { id: "act-dot", type: "circle", source: "activities", filter: isPoint, paint: {
          "circle-radius": 4, "circle-color": "#f97316", "circle-stroke-color": "#7c2d12",
          "circle-stroke-width": 1.5 } },
        { id: "site-point", type: "circle", source: "sites", filter: isPoint, paint: {
          "circle-radius": ["case", nuc, 8, 4.5], "circle-color": siteColour(),
          "circle-stroke-color": ["case", nuc, "#701a75", "#111827"],
          "circle-stroke-width": ["case", nuc, 4, 1.2] } },
        { id: "conflict-line", type: "line", source: "conflicts", filter: isLine,
          layout: { "line-cap": "round" },
          paint: { "line-color": "#e11d48", "line-width": 4, "line-dasharray": [2, 1] } },
        { id: "conflict-point", type: "circle", source: "conflicts", filter: isPoint, paint: {
          "circle-radius": 9, "circle-color": "rgba(225,29,72,0.25)",
          "circle-stroke-color": "#e11d48", "circle-stroke-width": 3 } },
      ],
    };
  }

  // --- time: activities (and conflicts) whose window covers the chosen time -----------
  function covers(t) {
    return ["all",
      ["any", ["==", ["get", "start"], null], ["<=", ["get", "start"], t]],
      ["any", ["==", ["get", "end"], null], [">", ["get", "end"], t]]];
  }

  function zulu(s) { return new Date(s * 1000).toISOString().slice(0, 16).replace("T", " ") + "Z"; }

  function applyTime(m) {
    var map = m.map;
    TIMED.forEach(function (id) {
      var layer = map.getLayer(id);
      if (!layer) return;
      if (m.baseFilters[id] === undefined) m.baseFilters[id] = map.getFilter(id) || null;
      var base = m.baseFilters[id];
      var f = m.time === null ? base : base ? ["all", base, covers(m.time)] : covers(m.time);
      map.setFilter(id, f);
    });
    var acts = m.data.activities.features;
    var shown = m.time === null ? acts.length : acts.filter(function (f) {
      return f.properties.start <= m.time && m.time < f.properties.end;
    }).length;
    m.el.dataset.activitiesShown = String(shown);
    status(m);
  }

  function timeControls(m) {
    var root = m.el.closest(".map-tab");
    if (!root) return;
    var on = root.querySelector("#map-time-on");
    var range = root.querySelector("#map-time");
    var out = root.querySelector("#map-time-out");
    if (!on || !range) return;
    var acts = m.data.activities.features;
    var now = Math.floor(Date.now() / 1000);
    var lo = now - 86400, hi = now + 86400;
    if (acts.length) {
      lo = Math.min.apply(null, acts.map(function (f) { return f.properties.start; }));
      hi = Math.max.apply(null, acts.map(function (f) { return f.properties.end; }));
    }
    range.min = String(Math.floor(lo / 900) * 900);
    range.max = String(Math.ceil(hi / 900) * 900);
    if (m.time === null) range.value = range.min;
    function update() {
      range.disabled = !on.checked;
      m.time = on.checked ? Number(range.value) : null;
      if (out) out.textContent = on.checked ? zulu(m.time) : "all times";
      range.setAttribute("aria-valuetext", on.checked ? zulu(m.time) : "all times");
      applyTime(m);
    }
    if (!m.timeBound) {
      m.timeBound = true;
      on.addEventListener("change", update);
      range.addEventListener("input", update);
    }
    update();
  }

  function layerToggles(m) {
    var root = m.el.closest(".map-tab");
    if (!root) return;
    root.querySelectorAll("input[data-map-layer]").forEach(function (box) {
      box.addEventListener("change", function () {
        (GROUPS[box.dataset.mapLayer] || []).forEach(function (id) {
          if (m.map.getLayer(id)) m.map.setLayoutProperty(id, "visibility", box.checked ? "visible" : "none");
        });
      });
    });
  }

  // --- the conflict list: the same conflicts as text, each opens its details ----------
  function km(m) { return m >= 1000 ? (m / 1000).toFixed(1) + " km" : Math.round(m) + " m"; }

  function conflictList(m) {
    var root = m.el.closest(".map-tab");
    var list = root && root.querySelector("#map-conflict-list");
    if (!list) return;
    var feats = m.data.conflicts.features;
    var count = root.querySelector("#map-conflict-count");
    if (count) count.textContent = "(" + feats.length + ")";
    list.replaceChildren();
    if (!feats.length) {
      var none = document.createElement("li");
      none.className = "muted";
      none.textContent = "No open conflict.";
      list.appendChild(none);
      return;
    }
    feats.forEach(function (f) {
      var p = f.properties;
      var li = document.createElement("li");
      var b = document.createElement("button");
      b.type = "button";
      b.className = "map-conflict" + (p.nuc ? " nuclear" : "");
      b.dataset.details = "/console/conflict/" + encodeURIComponent(p.id);
      b.dataset.conflict = p.id;
      b.textContent = (p.nuc ? "NUCLEAR · " : "") + p.site_name + " (" + p.site_id + ") ← " +
        p.kind.replace(/_/g, " ") + " " + p.activity_id + " (" + p.activity_station + "): " +
        km(p.distance_m) + " away, protected " + km(p.reach_m) + " · concern " +
        String(p.concern).toUpperCase() +
        (p.start ? " · " + zulu(p.start) + " to " + (p.end ? zulu(p.end) : "open") : "");
      li.appendChild(b);
      list.appendChild(li);
    });
  }

  function status(m) {
    var root = m.el.closest(".map-tab");
    var line = root && root.querySelector("#map-status");
    if (!line) return;
    var d = m.el.dataset;
    line.textContent = d.sites + " protected sites, " + d.activities + " activities (" +
      d.activitiesShown + " shown), " + d.conflicts + " open conflicts.";
  }

  // --- data ----------------------------------------------------------------------------
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/login"); throw new Error("no session"); }
        if (!r.ok) throw new Error(url + ": " + r.status);
        return r.json();
      });
  }

  function refresh(m) {
    if (m.loading) { m.again = true; return m.loading; }
    m.loading = Promise.all(SOURCES.map(function (s) { return getJSON("/console/map/" + s); }))
      .then(function (got) {
        if (!m.el.isConnected) return;
        SOURCES.forEach(function (s, i) {
          m.data[s] = got[i];
          m.map.getSource(s).setData(got[i]);
          m.el.dataset[s] = String(got[i].features.length);
        });
        if (!m.wall) H.mapData = m.data;
        timeControls(m);
        conflictList(m);
        m.map.once("idle", function () {
          m.el.dataset.ready = "1";
          body.dataset.mapReady = "1";
        });
        m.map.triggerRepaint();
      })
      .catch(function (e) { if (H.toast) H.toast("The map could not load: " + e.message, "error"); })
      .finally(function () {
        m.loading = null;
        if (m.again) { m.again = false; refresh(m); }
      });
    return m.loading;
  }

  var pending = null;
  function refreshAll() {
    clearTimeout(pending);
    pending = setTimeout(function () {
      prune();
      maps.forEach(function (m) { if (m.loaded) refresh(m); });
    }, 250);
  }

  // --- clicks: the top feature under the pointer opens its details ---------------------
  function featureAt(m, point) {
    var box = [[point.x - 5, point.y - 5], [point.x + 5, point.y + 5]];
    var layers = CLICKABLE.filter(function (id) {
      return m.map.getLayer(id) && m.map.getLayoutProperty(id, "visibility") !== "none";
    });
    var found = m.map.queryRenderedFeatures(box, { layers: layers });
    found.sort(function (a, b) { return CLICKABLE.indexOf(a.layer.id) - CLICKABLE.indexOf(b.layer.id); });
    return found[0] || null;
  }

  function detailsUrl(f) {
    var id = encodeURIComponent(f.properties.id);
    if (f.source === "conflicts") return "/console/conflict/" + id;
    if (f.source === "activities") return "/console/activity/" + id;
    return "/console/site/" + id;
  }

  function label(f) {
    var p = f.properties;
    if (f.source === "conflicts") return "Conflict: " + p.site_name + " ← " + p.activity_id + ", " + km(p.distance_m);
    if (f.source === "activities") return "Activity " + p.id + " (" + p.kind.replace(/_/g, " ") + ", " + p.owner + ")";
    return (p.nuc ? "NUCLEAR · " : "") + p.name + " (" + p.id + ", " + p.cat.replace(/_/g, " ") + ")";
  }

  // --- one map per element ---------------------------------------------------------------
  function init(el) {
    el.dataset.mapInit = "1";
    var wall = el.dataset.map === "wall";
    var m = { el: el, map: null, wall: wall, data: { sites: EMPTY, activities: EMPTY, conflicts: EMPTY },
      time: null, baseFilters: {}, loaded: false };
    maps.push(m);
    Promise.all([loadLibs().then(loadBasemap), null]).then(function (got) {
      if (!el.isConnected) return;
      var map = new window.maplibregl.Map({
        container: el,
        style: style(got[0]),
        center: [32.0, 48.5],
        zoom: wall ? 4.6 : 4.8,
        attributionControl: false,
        interactive: !wall, // the wall is looked at across the room, not handled
        maxPitch: 0,
      });
      m.map = map;
      if (!wall) {
        H.map = map;
        map.addControl(new window.maplibregl.NavigationControl({ showCompass: false }), "top-right");
      }
      map.getCanvas().setAttribute("aria-label", "Map canvas (the conflicts are listed as text below)");
      map.on("load", function () {
        m.loaded = true;
        layerToggles(m);
        refresh(m);
      });
      if (wall) return; // the wall is read-only: no clicks, no actions
      map.on("click", function (e) {
        var f = featureAt(m, e.point);
        if (f && H.details) H.details(detailsUrl(f));
      });
      map.on("mousemove", function (e) {
        var f = featureAt(m, e.point);
        var canvas = map.getCanvas();
        canvas.style.cursor = f ? "pointer" : "";
        canvas.title = f ? label(f) : "";
      });
    }).catch(function (e) {
      var root = el.closest(".map-tab");
      var line = root && root.querySelector("#map-status");
      if (line) line.textContent = "The map could not load: " + e.message;
    });
  }

  function prune() {
    maps = maps.filter(function (m) {
      if (m.el.isConnected) return true;
      if (m.map) m.map.remove();
      if (H.map === m.map) H.map = null;
      return false;
    });
  }

  function scan() {
    prune();
    document.querySelectorAll(".map[data-map]:not([data-map-init])").forEach(init);
  }

  document.addEventListener("DOMContentLoaded", scan);
  document.addEventListener("htmx:afterSettle", scan);

  // --- live: notices, concern steps and conflict alarms refresh the sources in place ---
  function onMessage(data) { if (data && NOTICE_TYPES[data.type]) refreshAll(); }
  if (H.on) {
    H.on("message.received", onMessage);
    H.on("message.queued", onMessage);
    H.on("alarm.raised", function (data) {
      if (data && (data.kind === "conflict" || data.kind === "notice_refused")) refreshAll();
    });
  }
  // a conflict whose details are open ended (its activity or site changed): say so once,
  // in place of the details, instead of asking for it again at every event
  document.addEventListener("htmx:responseError", function (ev) {
    var el = ev.detail && ev.detail.elt;
    if (!el || el.id !== "conflict-detail" || ev.detail.xhr.status !== 404) return;
    var gone = document.createElement("div");
    gone.className = "map-detail";
    gone.id = "conflict-ended";
    var h = document.createElement("h2");
    h.textContent = "Conflict ended";
    var p = document.createElement("p");
    p.textContent = "This conflict is no longer open: its activity or site changed, ended " +
      "or was withdrawn. Any concern raised about it stays in the concerns.";
    gone.append(h, p);
    el.replaceWith(gone);
  });
  body.addEventListener("hl-resync", refreshAll);
  body.addEventListener("hl-map-changed", refreshAll);
  H.mapRefresh = refreshAll;
})();
