"""The public API is curated: exactly these names, each really defined."""

import hotline

EXPECTED = {
    "ConfigError", "Envelope", "HotlineError", "InputError", "Kind", "Precedence",
    "Settings", "SignedCard", "StationCard", "TransportError", "TrustError",
    "UnverifiedEnvelope", "__version__", "decode", "parse_card", "safety_number",
}  # fmt: skip


def test_exported_members() -> None:
    assert set(hotline.__all__) == EXPECTED
    for name in hotline.__all__:
        assert getattr(hotline, name) is not None


def test_public_members_are_exported() -> None:
    public = {
        name for name, value in vars(hotline).items()
        if not name.startswith("_") and not getattr(value, "__name__", "").startswith("hotline.")
    }  # fmt: skip
    assert public <= EXPECTED
