"""Crypto recipes over raw bytes: the one place that imports ``cryptography`` primitives.

Owns: Ed25519 signing and verification with domain separation, X25519 key generation,
HPKE sealing and opening (RFC 9180), SHA-256, constant-time comparison, and the
passphrase seal for key files (Argon2id + ChaCha20-Poly1305).
Must not touch: files, the network, the store. Keys cross this boundary as raw bytes.

``verify`` returns None or raises ``SignatureError``; it never returns a bool.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from hotline.errors import ConfigError, DecryptError, SignatureError

ED25519_PUBLIC_LEN = 32
ED25519_SIGNATURE_LEN = 64
X25519_PUBLIC_LEN = 32


@dataclass(frozen=True, slots=True)
class HpkeSuite:
    """An HPKE suite by its RFC 9180 registry ids, as named on the wire."""

    kem_id: int
    kdf_id: int
    aead_id: int

    def __str__(self) -> str:
        return f"kem=0x{self.kem_id:04x},kdf=0x{self.kdf_id:04x},aead=0x{self.aead_id:04x}"


#: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
SUITE_X25519_CHACHA = HpkeSuite(0x0020, 0x0001, 0x0003)
#: No sealing: for kinds whose payload is public by design (receipts).
SUITE_NONE = HpkeSuite(0, 0, 0)

_SUITES: dict[HpkeSuite, hpke.Suite] = {
    SUITE_X25519_CHACHA: hpke.Suite(
        hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305
    ),
}


def supported_suite(suite: HpkeSuite) -> bool:
    return suite in _SUITES


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two byte strings."""
    return hmac.compare_digest(a, b)


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


# --- Ed25519 -----------------------------------------------------------------------


def new_signing_key() -> bytes:
    """A fresh Ed25519 private key as its 32-byte seed."""
    from cryptography.hazmat.primitives import serialization

    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def signing_public_key(seed: bytes) -> bytes:
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def sign(seed: bytes, context: bytes, message: bytes) -> bytes:
    """Ed25519 signature over ``context || message``; context separates domains."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed).sign(context + message)


@functools.lru_cache(maxsize=256)
def _public_key(public_key: bytes) -> ed25519.Ed25519PublicKey:
    """A parsed Ed25519 public key, once per key and process (parsing costs about a
    fifth of a verification; a transcript check verifies thousands with two keys)."""
    return ed25519.Ed25519PublicKey.from_public_bytes(public_key)


def verify(public_key: bytes, signature: bytes, context: bytes, message: bytes) -> None:
    """Verify an Ed25519 signature over ``context || message``; raise on any failure."""
    if len(public_key) != ED25519_PUBLIC_LEN or len(signature) != ED25519_SIGNATURE_LEN:
        raise SignatureError("signature or key has the wrong length")
    try:
        _public_key(bytes(public_key)).verify(signature, context + message)
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError("signature does not verify") from exc


def raw_verifier(public_key: bytes) -> Callable[[bytes, bytes], None]:
    """``verify(signature, message)`` of a parsed Ed25519 key (parsed once per key and
    process), for loops that check thousands of signatures: it raises an unspecified
    exception on any failure, so a caller re-checks a failure through :func:`verify`
    to learn (and report) what failed. Raises ``SignatureError`` for a malformed key."""
    if len(public_key) != ED25519_PUBLIC_LEN:
        raise SignatureError("signature or key has the wrong length")
    try:
        return _public_key(bytes(public_key)).verify
    except ValueError as exc:
        raise SignatureError("not an Ed25519 public key") from exc


class Signer:
    """An Ed25519 signer that parses its key once (signing is on the hot path)."""

    __slots__ = ("_key", "public_key")

    def __init__(self, seed: bytes) -> None:
        self._key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._key.public_key().public_bytes_raw()

    def sign(self, context: bytes, message: bytes) -> bytes:
        return self._key.sign(context + message)


# --- X25519 / HPKE -----------------------------------------------------------------


def new_encryption_key() -> bytes:
    """A fresh X25519 private key as 32 raw bytes."""
    return x25519.X25519PrivateKey.generate().private_bytes_raw()


def encryption_public_key(private: bytes) -> bytes:
    return x25519.X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def seal(suite: HpkeSuite, recipient_public: bytes, info: bytes, plaintext: bytes) -> bytes:
    """HPKE base-mode single-shot seal; returns ``enc || ciphertext``."""
    impl = _SUITES.get(suite)
    if impl is None:
        raise ConfigError(f"HPKE suite {suite} is not supported")
    public = x25519.X25519PublicKey.from_public_bytes(recipient_public)
    return impl.encrypt(plaintext, public, info=info)


class Opener:
    """Opens HPKE payloads sealed to one X25519 key (parsed once)."""

    __slots__ = ("_key",)

    def __init__(self, private: bytes) -> None:
        self._key = x25519.X25519PrivateKey.from_private_bytes(private)

    def open(self, suite: HpkeSuite, info: bytes, sealed: bytes) -> bytes:
        impl = _SUITES.get(suite)
        if impl is None:
            raise DecryptError(f"HPKE suite {suite} is not supported")
        try:
            return impl.decrypt(sealed, self._key, info=info)
        except (InvalidTag, ValueError) as exc:
            raise DecryptError("payload cannot be opened") from exc


# --- passphrase seal for key files ---------------------------------------------------

_SEAL_MAGIC = b"hotline-sealed-key/v1\n"
_ARGON_TIME, _ARGON_MEMORY_KIB, _ARGON_LANES = 3, 65536, 4


def seal_with_passphrase(passphrase: str, secret: bytes) -> bytes:
    """Encrypt ``secret`` under a key derived from ``passphrase`` with Argon2id."""
    salt, nonce = os.urandom(16), os.urandom(12)
    key = _derive(passphrase, salt)
    return _SEAL_MAGIC + salt + nonce + ChaCha20Poly1305(key).encrypt(nonce, secret, _SEAL_MAGIC)


def is_passphrase_sealed(blob: bytes) -> bool:
    return blob.startswith(_SEAL_MAGIC)


def open_with_passphrase(passphrase: str, blob: bytes) -> bytes:
    if not is_passphrase_sealed(blob) or len(blob) < len(_SEAL_MAGIC) + 28 + 16:
        raise ConfigError("key file is not a sealed key", hint="check the key file path")
    body = blob[len(_SEAL_MAGIC) :]
    salt, nonce, ciphertext = body[:16], body[16:28], body[28:]
    try:
        return ChaCha20Poly1305(_derive(passphrase, salt)).decrypt(nonce, ciphertext, _SEAL_MAGIC)
    except InvalidTag as exc:
        raise ConfigError(
            "wrong passphrase for the station's key files",
            code="bad_passphrase",
            hint="set HOTLINE_PASSPHRASE or pass --passphrase with the passphrase given at init",
        ) from exc


def _derive(passphrase: str, salt: bytes) -> bytes:
    return hash_secret_raw(
        passphrase.encode(),
        salt,
        time_cost=_ARGON_TIME,
        memory_cost=_ARGON_MEMORY_KIB,
        parallelism=_ARGON_LANES,
        hash_len=32,
        type=Type.ID,
    )
