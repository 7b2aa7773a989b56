// The handover area of the console (window.Hotline: console.js).
"use strict";
