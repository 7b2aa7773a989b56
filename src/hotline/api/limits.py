"""The operator API's gate: token, rate and body size, checked before anything is read.

Owns the ASGI middleware in front of every operator route. In this order, and before the
application sees the request:

1. who is asking: the ``authenticate`` seam maps the request's headers to a ``Principal``
   (the station's bootstrap token, compared in constant time, is ``roles.STATION``; an
   officer's token or browser session is service/officers.py's), put in the scope as
   ``scope["hotline.principal"]`` for ``api.auth.principal``. A request that is no one
   costs the client one unit of its own failure budget
   (``api_auth_failures_per_s``, burst ``AUTH_FAILURE_BURST``): 401 while it lasts,
   429 after. A right token is never refused because of another client's failures;
2. the request rate, per client address and token (``api_rate_per_s``, burst 2x), so
   one client cannot use up another's budget;
3. the body size: a declared Content-Length over the route's limit is refused at once,
   and the bytes the application reads are counted as they arrive, so a body without a
   length (chunked) is cut off at the limit.

Public paths (the OpenAPI document) and public routes (login: ``POST /api/v1/session``,
whose failures service/officers.py holds back per account) skip step 1 but not step 2;
the station token is refused altogether when the setting ``station_token_enabled`` is
off (``station_token=False``); a session request that fails its CSRF check is refused
with the seam's own error (403 ``csrf``); websockets are refused
(no route uses them, and nothing here would check them). Every refusal is the API's one
error shape (``hotline.api.errors``), with 401, 413 or 429,
and is sent without reading a byte of the body. Invariants: the body of a request that
fails 1 or 2 is never read; the application never receives more than the limit plus one
chunk of any body. Buckets are kept for at most ``MAX_CLIENTS`` clients (least recently
seen dropped first), so the gate's own memory is bounded.

Must not touch: routes, business rules, the store. The clock is a parameter.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline.api.errors import RequestTooLargeError, error_response
from hotline.crypto import primitives
from hotline.errors import AuthError, HotlineError, RateLimitedError
from hotline.service.roles import STATION, Principal

#: the scope key the authenticated principal is kept under
PRINCIPAL_KEY = "hotline.principal"
#: maps a request's scope (headers, cookies) to who is asking, or None; runs on the loop,
#: so it must not block (no database reads: officers are looked up in memory)
Authenticate = Callable[[Scope], Principal | None]

#: wrong tokens a client may send in a burst before it is slowed to the steady rate
AUTH_FAILURE_BURST = 10.0
#: clients whose buckets are remembered (least recently seen forgotten first)
MAX_CLIENTS = 4096


class TokenBucket:
    """``rate`` units a second, bursts of ``capacity``; the clock is a parameter."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens, self.at = capacity, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Buckets:
    """One token bucket per key, at most ``max_keys`` of them (LRU)."""

    def __init__(
        self,
        rate: float,
        capacity: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_CLIENTS,
    ) -> None:
        self.rate, self.capacity, self.clock, self.max_keys = rate, capacity, clock, max_keys
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def take(self, key: Hashable) -> bool:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.capacity, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)

    def __len__(self) -> int:
        return len(self._buckets)


class _TooLarge(Exception):
    """Raised inside the application's ``receive`` when the body passes its limit."""


class OperatorGate:
    """ASGI middleware: token, then rate, then body size (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        rate_per_s: float,
        auth_failures_per_s: float,
        max_body_bytes: int,
        body_limits: Mapping[str, int] | None = None,
        public_paths: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.monotonic,
        authenticate: Authenticate | None = None,
        station_token: bool = True,
        public_routes: frozenset[tuple[str, str]] = frozenset(),
        public_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self._authenticate = authenticate
        #: the station's bootstrap token; None when the setting station_token_enabled is off
        self._expected = token.encode() if station_token else None
        #: (method, path) pairs admitted without a principal (login), rate-limited
        self.public_routes = public_routes
        self.requests = Buckets(rate_per_s, rate_per_s * 2, clock)
        self.failures = Buckets(auth_failures_per_s, AUTH_FAILURE_BURST, clock)
        self.max_body_bytes = max_body_bytes
        self.body_limits = dict(body_limits or {})
        self.public_paths = public_paths
        #: path prefixes admitted without a principal (the console's static files)
        self.public_prefixes = public_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets: nothing here would check them
            await send({"type": "websocket.close", "code": 1008})
            return
        path: str = scope.get("path", "")
        public = (
            path in self.public_paths
            or (scope.get("method"), path) in self.public_routes
            or (scope.get("method") in ("GET", "HEAD") and path.startswith(self.public_prefixes))
        )
        refusal = self._public(scope) if public else self._admit(scope)
        if refusal is None:
            refusal = self._declared_size(scope, path)
        if refusal is not None:
            await error_response(refusal)(scope, _no_body, send)
            return
        await self._limited(scope, receive, send, self._limit(path))

    # --- the checks -------------------------------------------------------------------

    def _admit(self, scope: Scope) -> HotlineError | None:
        client = _client(scope)
        try:
            principal = self._who(scope)
        except HotlineError as exc:  # a session request without its CSRF token
            return exc
        if principal is None:
            if not self.failures.take(client):
                return RateLimitedError(
                    "too many requests with a missing or wrong token from this client",
                    hint="pass the station's API token (hotline token shows it); the limit "
                    "is the setting api_auth_failures_per_s",
                )
            return AuthError("missing or wrong bearer token")
        if not self.requests.take((client, principal.username)):
            return RateLimitedError("too many requests from this client")
        scope[PRINCIPAL_KEY] = principal
        return None

    def _who(self, scope: Scope) -> Principal | None:
        if self._token_ok(_header(scope, b"authorization")):
            return STATION
        return self._authenticate(scope) if self._authenticate is not None else None

    def _public(self, scope: Scope) -> HotlineError | None:
        """A public path (the spec) needs no token, but counts against the client's rate."""
        if not self.requests.take((_client(scope), "public")):
            return RateLimitedError("too many requests from this client")
        return None

    def _token_ok(self, header: bytes | None) -> bool:
        if header is None or self._expected is None:
            return False
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return primitives.equal(credentials.strip(), self._expected)

    def _limit(self, path: str) -> int:
        return self.body_limits.get(path, self.max_body_bytes)

    def _declared_size(self, scope: Scope, path: str) -> HotlineError | None:
        declared = _header(scope, b"content-length")
        if declared is None:
            return None
        limit = self._limit(path)
        if not declared.isdigit() or len(declared) > 19 or int(declared) > limit:
            return RequestTooLargeError(f"request body larger than {limit} bytes")
        return None

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the application, counting the body bytes it reads against ``limit``."""
        seen = 0
        over = False
        started = False

        async def counted() -> Message:
            nonlocal seen, over
            if over:
                raise _TooLarge
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over:  # whatever the application answers to the cut body is replaced
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            pass
        except Exception:
            if not over:
                raise
        if over and not started:
            exc = RequestTooLargeError(f"request body larger than {limit} bytes")
            await error_response(exc)(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def _client(scope: Scope) -> str:
    client: Any = scope.get("client")
    return str(client[0]) if client else "unknown"
