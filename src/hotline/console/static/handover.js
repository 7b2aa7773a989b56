// The handover area of the console (window.Hotline: console.js). The tab's forms and
// buttons are data-api (console.js sends them); the history refreshes on the
// handover.written and handover.acknowledged events.
"use strict";
