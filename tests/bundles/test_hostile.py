"""Hostile bundles: each is refused with its code before its contents are read, and the
store does not change (every table a bundle could touch, compared before and after)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hotline.crypto import primitives
from hotline.errors import HotlineError
from hotline.wire import bundle as wire
from tests.bundles.conftest import Pair, bundles_of, run_pair, state
from tests.service.conftest import make_identity

__all__ = ["run_pair"]
sqlite_only = pytest.mark.parametrize("run_pair", ["sqlite"], indirect=True)
MAX = 64 * 1024


def resigned(raw: bytes, seed: bytes) -> bytes:
    """The same bytes signed again by another key."""
    body = raw[: -primitives.ED25519_SIGNATURE_LEN]
    return body + primitives.sign(seed, wire.DOMAIN, body)


def made(sender: str, recipient: str, seed: bytes, envelopes: list[bytes],
         receipts: list[bytes]) -> bytes:  # fmt: skip
    return wire.encode(
        bundle_id=wire.new_bundle_id(), sender=sender, recipient=recipient, created_at_us=1,
        envelopes=envelopes, receipts=receipts, answers=None,
        signer=primitives.Signer(seed),
    )  # fmt: skip


def flip(raw: bytes, at: int) -> bytes:
    return raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :]


#: name -> (how to make the hostile file from a good one, the code it is refused with)
CASES: dict[str, tuple[Callable[[bytes, dict[str, Any]], bytes], str]] = {
    "re-signed by a wrong key": (lambda raw, k: resigned(raw, k["charlie"]), "bad_signature"),
    "altered byte in a record": (lambda raw, k: flip(raw, len(raw) - 100), "bad_signature"),
    "altered byte in the header": (lambda raw, k: flip(raw, 30), "bad_bundle"),
    "truncated": (lambda raw, k: raw[:-1], "bad_bundle"),
    "truncated to the prefix": (lambda raw, k: raw[:13], "bad_bundle"),
    "padded": (lambda raw, k: raw + b"\x00", "bad_bundle"),
    "oversized": (lambda raw, k: raw + b"\x00" * MAX, "too_large"),
    "empty": (lambda raw, k: b"", "bad_bundle"),
    "another peer's bundle (bravo's, to alpha) replayed": (
        lambda raw, k: k["to_alpha"],
        "misaddressed",
    ),
    "from a stranger": (
        lambda raw, k: made("charlie", "bravo", k["charlie"], [], [k["receipt"]]),
        "unknown_peer",
    ),
    "more records than bundle_max_envelopes": (
        lambda raw, k: made("alpha", "bravo", k["alpha"], [], [k["receipt"]] * 4),
        "too_large",
    ),
    "signed by alpha, carrying bravo's own receipt": (
        lambda raw, k: made("alpha", "bravo", k["alpha"], [], [k["receipt"]]),
        "bad_bundle",
    ),
    "signed by alpha, an envelope of bravo's in it": (
        lambda raw, k: made("alpha", "bravo", k["alpha"], [k["to_alpha_env"]], []),
        "bad_bundle",
    ),
}


@sqlite_only
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_bundle_is_refused_and_changes_nothing(run_pair: Any, case: str) -> None:
    make, code = CASES[case]

    async def scenario(p: Pair) -> None:
        await p.send("to bravo")
        await p.send("to alpha", src=p.bravo, dst="alpha")
        good = (await bundles_of(p.alpha).export("bravo", "ko")).data
        to_alpha = (await bundles_of(p.bravo).export("alpha", "li")).data
        [env_b] = p.outbound(p.bravo, "alpha")
        # a receipt bravo made (for alpha's envelope), by a side channel
        receipt = await p.deliver(p.alpha, p.bravo, p.outbound(p.alpha, "bravo"))
        keys = {
            "charlie": make_identity("charlie").signing_seed,
            "alpha": p.alpha.line.identity.signing_seed,
            "to_alpha": to_alpha,
            "to_alpha_env": env_b,
            "receipt": receipt[0],
        }
        hostile = make(good, keys)
        before = state(p.bravo)
        with pytest.raises(HotlineError) as refused:
            await bundles_of(p.bravo).import_(hostile, "li")
        assert refused.value.code == code, refused.value
        assert state(p.bravo) == before

    run_pair(scenario, bundle_max_bytes=MAX, bundle_max_envelopes=3)


@sqlite_only
def test_the_size_limit_comes_before_any_read(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        before = state(p.bravo)
        with pytest.raises(HotlineError) as refused:
            await bundles_of(p.bravo).import_(b"\xff" * (MAX + 1), "li")
        assert refused.value.code == "too_large"
        assert state(p.bravo) == before

    run_pair(scenario, bundle_max_bytes=MAX)
