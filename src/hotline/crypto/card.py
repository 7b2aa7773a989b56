"""Station cards: the self-signed public identity two stations exchange out of band.

Owns: the card's content and its exchangeable text form, parsing and checking a card
(``parse_card``: text in, checked ``SignedCard`` out, or a ``TrustError``), the station
fingerprint officers read aloud, the pair's safety number, and the rules for station
ids, display names and endpoint URLs (``keys`` uses the same rules).
Must not touch: files, the network, the store. Pure functions over bytes and values.

Invariants:
- The signature covers the exact body bytes (``primitives.sign`` with context
  ``hotline-card/v1\\x00``); a parsed card keeps those bytes and is never re-serialised
  to check the signature.
- A ``SignedCard`` obtained from ``parse_card`` has a valid self-signature and every
  field checked; ``StationIdentity.card()`` builds one through the same parser.
- The fingerprint depends on the signing key only, so a new endpoint list or a new TLS
  certificate (a re-issued card) keeps the fingerprint the officers verified.

Card text: one JSON object ``{"hotline_card": 1, "body": <b64>, "signature": <b64>}``
followed by a newline; surrounding ASCII whitespace is tolerated (mail and editors add
it), nothing else is: base64 must be canonical, keys exact, no duplicates.
The body is canonical JSON (sorted keys, no spaces, UTF-8)::

    {"cosign_key":b64,"created_at":"2026-01-01T00:00:00Z","display_name":str,
     "encryption_key":b64,"endpoints":[str],"log_key":b64,"signing_key":b64,
     "station_id":str,"tls_cert":b64(DER),"v":1}
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hotline.crypto import primitives, tls
from hotline.errors import HotlineError, SignatureError, TrustError

STATION_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
CARD_CONTEXT = b"hotline-card/v1\x00"
CARD_VERSION = 1
MAX_CARD_BYTES = 64 * 1024
MAX_DISPLAY_NAME_CHARS = 100
MAX_ENDPOINTS = 16
MAX_ENDPOINT_CHARS = 255
KEY_LEN = 32

FINGERPRINT_DOMAIN = b"hotline-fingerprint/v1\x00"
FINGERPRINT_ITERATIONS = 5200
FINGERPRINT_GROUPS = 12

_STATION_ID_RE = re.compile(STATION_ID_PATTERN)
_RFC3339_UTC_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_OUTER_KEYS = frozenset({"hotline_card", "body", "signature"})
_BODY_KEYS = frozenset(
    {
        "v",
        "station_id",
        "display_name",
        "signing_key",
        "encryption_key",
        "log_key",
        "cosign_key",
        "tls_cert",
        "endpoints",
        "created_at",
    }
)


class CardError(TrustError):
    """A station card is malformed, too large, or has a field that is not acceptable."""

    code = "bad_card"
    hint = "ask the peer for its station card again, through the agreed out-of-band channel"


@dataclass(frozen=True, slots=True)
class StationCard:
    """The checked content of a station card."""

    station_id: str
    display_name: str
    signing_key: bytes
    encryption_key: bytes
    log_key: bytes
    cosign_key: bytes
    tls_cert_der: bytes
    endpoints: tuple[str, ...]
    created_at: str


@dataclass(frozen=True, slots=True)
class SignedCard:
    """A card with its exact signed body bytes and signature. Build with ``parse_card``."""

    card: StationCard
    body: bytes
    signature: bytes

    def to_text(self) -> str:
        """The exchangeable form: one JSON object and a newline."""
        outer = {
            "hotline_card": CARD_VERSION,
            "body": _b64(self.body),
            "signature": _b64(self.signature),
        }
        return json.dumps(outer, separators=(",", ":")) + "\n"

    def fingerprint(self) -> str:
        return fingerprint(self.card.signing_key)


# --- building -------------------------------------------------------------------------


def sign_card(card: StationCard, signing_seed: bytes) -> SignedCard:
    """Serialise ``card`` canonically, sign it, and return it checked by ``parse_card``.

    Raises ``CardError`` if a field is not acceptable or the seed is not the card's key.
    """
    body = _canonical_json(
        {
            "v": CARD_VERSION,
            "station_id": card.station_id,
            "display_name": card.display_name,
            "signing_key": _b64(card.signing_key),
            "encryption_key": _b64(card.encryption_key),
            "log_key": _b64(card.log_key),
            "cosign_key": _b64(card.cosign_key),
            "tls_cert": _b64(card.tls_cert_der),
            "endpoints": list(card.endpoints),
            "created_at": card.created_at,
        }
    )
    signature = primitives.sign(signing_seed, CARD_CONTEXT, body)
    outer = {"hotline_card": CARD_VERSION, "body": _b64(body), "signature": _b64(signature)}
    return parse_card(json.dumps(outer, separators=(",", ":")))


def rfc3339_utc(when: dt.datetime) -> str:
    """``when`` as RFC 3339 UTC to the second, e.g. ``2026-01-01T00:00:00Z``."""
    if when.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required")
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- parsing --------------------------------------------------------------------------


def parse_card(text: str | bytes) -> SignedCard:
    """Parse and check a card's text; raise ``CardError`` or ``SignatureError``.

    Order: size, outer JSON, base64, body JSON, the signing key, the self-signature over
    the exact body bytes, then every field. Any other exception would be a bug.
    """
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if len(raw) > MAX_CARD_BYTES:
        raise CardError(f"station card is larger than {MAX_CARD_BYTES} bytes")
    outer = _json_object(raw.strip(b" \t\r\n"), "station card")
    if set(outer) != _OUTER_KEYS:
        raise CardError("station card must have exactly hotline_card, body and signature")
    if type(outer["hotline_card"]) is not int or outer["hotline_card"] != CARD_VERSION:
        raise CardError("station card version is not supported", code="card_version")
    body = _unb64(outer["body"], "body")
    signature = _unb64(outer["signature"], "signature")
    fields = _json_object(body, "station card body")
    if set(fields) != _BODY_KEYS:
        raise CardError("station card body has missing or unknown fields")
    signing_key = _key(fields, "signing_key")
    try:
        primitives.verify(signing_key, signature, CARD_CONTEXT, body)
    except SignatureError as exc:
        raise SignatureError(
            "station card signature does not verify",
            hint="the card was altered or damaged; ask the peer for its card again",
        ) from exc
    if type(fields["v"]) is not int or fields["v"] != CARD_VERSION:
        raise CardError("station card body version is not supported", code="card_version")
    station_id = check_station_id(fields["station_id"], CardError)
    card = StationCard(
        station_id=station_id,
        display_name=check_display_name(fields["display_name"], CardError),
        signing_key=signing_key,
        encryption_key=_key(fields, "encryption_key"),
        log_key=_key(fields, "log_key"),
        cosign_key=_key(fields, "cosign_key"),
        tls_cert_der=_unb64(fields["tls_cert"], "tls_cert"),
        endpoints=check_endpoints(fields["endpoints"], CardError),
        created_at=_created_at(fields["created_at"]),
    )
    keys = {card.signing_key, card.encryption_key, card.log_key, card.cosign_key}
    if len(keys) != 4:
        raise CardError("station card reuses one key for two purposes")
    try:
        tls.check_card_cert(card.tls_cert_der, station_id)
    except tls.CertificateError as exc:
        raise CardError(exc.message) from exc
    return SignedCard(card=card, body=body, signature=signature)


# --- field rules (shared with keys) -------------------------------------------------


def check_station_id(value: object, error: type[HotlineError]) -> str:
    """``value`` if it is a valid station id (``STATION_ID_PATTERN``), else raise ``error``."""
    if not isinstance(value, str) or _STATION_ID_RE.fullmatch(value) is None:
        raise error(
            f"invalid station id {value!r}",
            hint="a station id is 1 to 32 characters: lower-case letters, digits and '-', "
            "starting with a letter or digit",
        )
    return value


def check_display_name(value: object, error: type[HotlineError]) -> str:
    """``value`` if it is a printable name of 1 to 100 characters, else raise ``error``.

    Control and format characters (including bidirectional overrides, which can make a
    name read differently from what it is) are refused, as are surrounding spaces.
    """
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_DISPLAY_NAME_CHARS
        or value != value.strip()
        or any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in value)
    ):
        raise error(
            "invalid display name",
            hint=f"use 1 to {MAX_DISPLAY_NAME_CHARS} printable characters, "
            "no control characters or surrounding spaces",
        )
    return value


def check_endpoints(value: object, error: type[HotlineError]) -> tuple[str, ...]:
    """The endpoints as a tuple if each is a plain ``https://host[:port][/path]`` URL."""
    if not isinstance(value, list | tuple) or len(value) > MAX_ENDPOINTS:
        raise error(f"endpoints must be a list of at most {MAX_ENDPOINTS} URLs")
    for url in value:
        _check_endpoint(url, error)
    if len(set(value)) != len(value):
        raise error("endpoints are listed twice")
    return tuple(value)


def _check_endpoint(url: object, error: type[HotlineError]) -> None:
    hint = "an endpoint is https://host[:port][/path], e.g. https://127.0.0.1:8471"
    if (
        not isinstance(url, str)
        or not 0 < len(url) <= MAX_ENDPOINT_CHARS
        or not url.isascii()
        or not url.isprintable()
        or any(ch.isspace() or ch == "\\" for ch in url)
    ):
        raise error(f"invalid endpoint {url!r}", hint=hint)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise error(f"invalid endpoint {url!r}", hint=hint) from exc
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.query
        or parts.fragment
        or url.endswith(("?", "#"))
        or port == 0
    ):
        raise error(f"invalid endpoint {url!r}", hint=hint)


# --- fingerprints ---------------------------------------------------------------------


def fingerprint(signing_key: bytes) -> str:
    """60 decimal digits in 12 groups of 5, derived from an Ed25519 signing key.

    ``h = SHA-256("hotline-fingerprint/v1\\0" || key)``, then 5200 times
    ``h = SHA-256(h || key)`` (as Signal's numeric fingerprints, to make grinding for a
    look-alike costly); the 64 bytes ``SHA-256(h || 01) || SHA-256(h || 02)`` give twelve
    5-byte big-endian numbers, each taken modulo 100000 as one group of 5 digits.
    """
    if len(signing_key) != KEY_LEN:
        raise CardError("a signing key is 32 bytes")
    h = primitives.sha256(FINGERPRINT_DOMAIN + signing_key)
    for _ in range(FINGERPRINT_ITERATIONS):
        h = primitives.sha256(h + signing_key)
    stream = primitives.sha256(h + b"\x01") + primitives.sha256(h + b"\x02")
    groups = (
        int.from_bytes(stream[i * 5 : i * 5 + 5], "big") % 100_000
        for i in range(FINGERPRINT_GROUPS)
    )
    return " ".join(f"{g:05d}" for g in groups)


#: groups of each station's fingerprint in the pair's safety number
SAFETY_GROUPS = 6


def safety_number(a: SignedCard, b: SignedCard) -> str:
    """The pair's safety number: the first 30 digits of each fingerprint, lower first; the
    same on both sides.

    60 digits in 12 groups of 5 (about 100 bits for each station's key), short enough
    to read aloud, as Signal's safety numbers are. Two officers each read their own
    screen: if the numbers agree, each holds the other's genuine card.
    """
    if primitives.equal(a.card.signing_key, b.card.signing_key):
        raise CardError("a safety number needs two different stations")
    halves = (" ".join(fp.split()[:SAFETY_GROUPS]) for fp in (a.fingerprint(), b.fingerprint()))
    return " ".join(sorted(halves))


# --- helpers --------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value.isascii():
        raise CardError(f"station card field {what} is not base64")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CardError(f"station card field {what} is not base64") from exc
    if _b64(data) != value:
        raise CardError(f"station card field {what} is not canonical base64")
    return data


def _key(fields: dict[str, Any], name: str) -> bytes:
    key = _unb64(fields[name], name)
    if len(key) != KEY_LEN:
        raise CardError(f"station card {name} is not {KEY_LEN} bytes")
    return key


def _created_at(value: object) -> str:
    if not isinstance(value, str) or _RFC3339_UTC_RE.fullmatch(value) is None:
        raise CardError("station card created_at is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SSZ)")
    try:
        dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError as exc:
        raise CardError("station card created_at is not a real date and time") from exc
    return value


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CardError(f"{what} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise CardError(f"{what} is not a JSON object")
    return value


def _no_duplicates(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
