"""hotline: a direct, always-tested, end-to-end secured line between parties that do not
trust each other, with a tamper-evident shared record and automatic deconfliction.

The names below are the curated public API; ``tests/test_exports.py`` checks the list.
"""

from hotline.crypto.card import SignedCard, StationCard, parse_card, safety_number
from hotline.errors import (
    ConfigError,
    HotlineError,
    InputError,
    TransportError,
    TrustError,
)
from hotline.settings import Settings
from hotline.wire.envelope import Envelope, Kind, Precedence, UnverifiedEnvelope, decode

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Envelope",
    "HotlineError",
    "InputError",
    "Kind",
    "Precedence",
    "Settings",
    "SignedCard",
    "StationCard",
    "TransportError",
    "TrustError",
    "UnverifiedEnvelope",
    "__version__",
    "decode",
    "parse_card",
    "safety_number",
]
