"""hotline: a direct, always-tested, end-to-end secured line between parties that do not
trust each other, with a tamper-evident shared record and automatic deconfliction.

The names below are the curated public API; ``tests/test_exports.py`` checks the list.
Those that need cryptography or pydantic are imported when first used (``__getattr__``),
so that ``import hotline`` (and ``hotline --help``) does not pay for them.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from hotline.errors import (
    ConfigError,
    HotlineError,
    InputError,
    TransportError,
    TrustError,
)

if _TYPE_CHECKING:
    from hotline.crypto.card import SignedCard, StationCard, parse_card, safety_number
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

#: the lazily imported public names and the module that defines each
_LAZY = {
    "SignedCard": "hotline.crypto.card",
    "StationCard": "hotline.crypto.card",
    "parse_card": "hotline.crypto.card",
    "safety_number": "hotline.crypto.card",
    "Settings": "hotline.settings",
    "Envelope": "hotline.wire.envelope",
    "Kind": "hotline.wire.envelope",
    "Precedence": "hotline.wire.envelope",
    "UnverifiedEnvelope": "hotline.wire.envelope",
    "decode": "hotline.wire.envelope",
}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hotline' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value
