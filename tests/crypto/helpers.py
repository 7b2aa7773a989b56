"""Shared helpers for the crypto tests: in-memory identities and re-signed card texts."""

from __future__ import annotations

import base64
import json
from functools import cache
from typing import Any

from hotline.crypto import primitives, tls
from hotline.crypto.card import CARD_CONTEXT
from hotline.crypto.keys import StationIdentity

CREATED_AT = "2026-01-02T03:04:05Z"


def new_identity(station_id: str = "alpha", display_name: str = "Alpha HQ") -> StationIdentity:
    """A fresh identity held in memory only (no files): new keys on every call."""
    key_pem, cert_pem = tls.make_self_signed(station_id)
    return StationIdentity(
        station_id=station_id,
        display_name=display_name,
        signing_seed=primitives.new_signing_key(),
        encryption_private=primitives.new_encryption_key(),
        log_seed=primitives.new_signing_key(),
        cosign_seed=primitives.new_signing_key(),
        tls_key_pem=key_pem,
        tls_cert_pem=cert_pem,
        endpoints=("https://127.0.0.1:8471",),
        created_at=CREATED_AT,
    )


#: the same as ``new_identity``, one per (id, name) for the whole run
identity = cache(new_identity)


def body_fields(ident: StationIdentity) -> dict[str, Any]:
    """The body of ``ident``'s card as a dict, to alter and re-sign."""
    fields: dict[str, Any] = json.loads(ident.card().body)
    return fields


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def signed_text(fields: Any, seed: bytes, *, raw_body: bytes | None = None) -> str:
    """Card text whose body (``fields`` as JSON, or ``raw_body``) is validly signed by ``seed``."""
    body = raw_body if raw_body is not None else json.dumps(fields, sort_keys=True).encode()
    signature = primitives.sign(seed, CARD_CONTEXT, body)
    return json.dumps({"hotline_card": 1, "body": b64(body), "signature": b64(signature)}) + "\n"
