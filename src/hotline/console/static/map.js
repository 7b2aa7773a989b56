// The map area of the console (window.Hotline: console.js).
"use strict";
