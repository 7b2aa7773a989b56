"""The console's Jinja2 environment: autoescaping everywhere, and the filters for time.

Owns how a value becomes text on a page: every ``{{ }}`` is HTML-escaped (a peer's
words can never become markup), times are UTC with a ``Z``, and a time a browser keeps
current (countdowns, "12 min ago") is a ``<time>`` element with ``data-at`` in
microseconds that static/console.js refreshes. Must not touch: the store, the network.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup


def utc(us: int | None, seconds: bool = True) -> str:
    """``2026-11-30 06:21:05Z`` from microseconds since the epoch ('' for None)."""
    if us is None:
        return ""
    t = dt.datetime.fromtimestamp(us / 1e6, dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%SZ" if seconds else "%Y-%m-%d %H:%MZ")


def iso(us: int | None) -> str:
    if us is None:
        return ""
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).isoformat().replace("+00:00", "Z")


def to_json(value: Any) -> Markup:
    """JSON for a ``data-`` attribute: the template still escapes quotes and ``<``."""
    return Markup.escape(json.dumps(value, separators=(",", ":"), sort_keys=True))


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("hotline.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["utc"] = utc
    env.filters["iso"] = iso
    env.filters["to_json"] = to_json
    return env
