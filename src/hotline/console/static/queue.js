// queue area of the console (see console.js for window.Hotline).
"use strict";
