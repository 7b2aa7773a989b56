// The concerns area of the console (window.Hotline: console.js).
"use strict";
