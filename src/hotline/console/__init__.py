"""The watch floor console: server-rendered pages for a browser, on the operator API.

Owns the console's pages and fragments (Jinja2 templates, autoescaped: a peer's words
are always text, never markup), its static files (our own CSS and JavaScript, and the
front-end libraries copied from frontend/package-lock.json into ``static/vendor``), and
the headers every response carries (a strict Content-Security-Policy: no inline script
or style, no third-party origin). Reads go through the service layer's read-side
queries, with the same role and channel checks as the JSON API; every change (send,
acknowledge, approve, raise a concern) is a call of the JSON API from the browser, with
the session cookie and its CSRF token, so the console adds no second write path.

Must not touch: SQL (store/), the station's keys, the peer endpoint. The console never
holds a key: it is a client of the operator API like the CLI.
"""

from hotline.console.app import install_console

__all__ = ["install_console"]
