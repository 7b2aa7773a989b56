"""The one exception tree of hotline.

Every error carries a short machine ``code`` (stable, documented, sent to peers and API
clients) and a human ``hint`` that says what to do next. Trust failures and transport
failures are separate branches: a bad signature is never retried, a timeout always is.

::

    HotlineError
    ├── ConfigError              settings, data directory, key files, passphrases
    ├── InputError               operator input refused before anything is appended
    │   ├── GeometryError        invalid or unsupported geometry
    │   └── ImportFileError      a registry import file refused whole
    ├── NotFoundError            no such peer, message, site, ...
    ├── AuthError                missing or wrong API token
    ├── PermissionDeniedError    role does not allow the action
    ├── RateLimitedError         too many operator requests
    ├── StoreError               the database refused or is unreachable
    ├── TrustError               something failed verification: never retried
    │   ├── EnvelopeError        malformed, truncated, too large, unknown version/kind
    │   │   └── BadTimeError     a time the peer claims is out of range (bad_time)
    │   ├── SequenceWindowError  a sequence number too far ahead (seq_window)
    │   ├── SignatureError       signature missing or wrong
    │   ├── UnknownPeerError     sender is not a peer of this station
    │   ├── MisaddressedError    envelope addressed to another station
    │   ├── ReplayError          a sequence number reused with other bytes (replay), or
    │   │                        a new one carrying an old message id (old_message_id)
    │   ├── DecryptError         payload cannot be opened
    │   ├── ProofError           inclusion or consistency proof does not verify
    │   ├── NoteError            malformed or wrongly signed note / checkpoint
    │   └── ForkError            two histories under one key: evidence of a fork
    └── TransportError           the line failed: retried with backoff
        ├── PeerUnreachableError
        └── PeerTimeoutError

What a peer is told about a refusal is terse (the code); the detail goes to the local log.
"""

from __future__ import annotations


class HotlineError(Exception):
    """Root of every error hotline raises on purpose."""

    code: str = "error"
    hint: str = ""

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.code})" + (f": {self.hint}" if self.hint else "")


class ConfigError(HotlineError):
    code = "config"
    hint = "check the settings and the data directory (hotline --help)"


class InputError(HotlineError):
    code = "bad_input"


class GeometryError(InputError):
    code = "bad_geometry"


class ImportFileError(InputError):
    code = "bad_import_file"
    hint = "fix the named feature and import the whole file again; nothing was imported"


class NotFoundError(HotlineError):
    code = "not_found"


class AuthError(HotlineError):
    code = "unauthorized"
    hint = "pass the station's API token (hotline token shows it)"


class PermissionDeniedError(HotlineError):
    code = "forbidden"


class RateLimitedError(HotlineError):
    code = "rate_limited"
    hint = "slow down; the limit is the setting api_rate_per_s"


class StoreError(HotlineError):
    code = "store"
    hint = "check that the database is reachable and has space; nothing was changed"


class TrustError(HotlineError):
    code = "untrusted"


class EnvelopeError(TrustError):
    code = "bad_envelope"


class BadTimeError(EnvelopeError):
    code = "bad_time"
    hint = "a time inside the payload is out of range: check the peer's clock and software"


class SequenceWindowError(TrustError):
    code = "seq_window"
    hint = "the sender skipped too far ahead: deliver the missing sequence numbers first"


class SignatureError(TrustError):
    code = "bad_signature"


class UnknownPeerError(TrustError):
    code = "unknown_peer"
    hint = "add the peer's station card with 'hotline peer add' after checking the safety number"


class MisaddressedError(TrustError):
    code = "misaddressed"


class ReplayError(TrustError):
    code = "replay"


class DecryptError(TrustError):
    code = "decrypt_failed"


class ProofError(TrustError):
    code = "bad_proof"


class NoteError(TrustError):
    code = "bad_note"


class ForkError(TrustError):
    code = "fork"
    hint = "keep both signed statements as evidence and raise it on the line at once"


class TransportError(HotlineError):
    code = "transport"


class PeerUnreachableError(TransportError):
    code = "peer_unreachable"
    hint = "the message stays queued and is retried; check the peer's endpoint and network"


class PeerTimeoutError(TransportError):
    code = "peer_timeout"
    hint = "the message stays queued and is retried"
