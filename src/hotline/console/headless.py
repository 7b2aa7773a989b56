"""Headless Chromium for the console's browser tests, its bench and its screenshots.

Owns where Debian's Chromium is (``CHROMIUM``, or the environment's ``HOTLINE_CHROMIUM``)
and the flags it needs on a machine with a closed network and no screen (``ARGS``):
no background connections (they are refused here, many at a time), software GL for the
map, and sound allowed without a click (the alarm's tone). Must not touch: the console
itself; nothing in a station imports this module.
"""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("HOTLINE_CHROMIUM", "/usr/bin/chromium")

ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-gl=swiftshader",
    "--enable-unsafe-swiftshader",
)
