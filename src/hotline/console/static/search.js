// The search area of the console (window.Hotline: console.js).
"use strict";
