"""The live peer endpoint under garbage, over the real pinned mutual TLS.

The target is a running station (alpha). The tests speak as its paired peer (bravo,
whose identity they load from bravo's data directory; bravo runs too, so that the line
is UP and no link test appends to alpha's ledger while the tests count entries) and
send everything a broken or hostile peer could: random bytes, valid envelopes with
flipped bytes, truncated envelopes, envelopes signed by another key, addressed to
another station, from an unknown station, of an unknown version, dated in the future,
sealed to the wrong key, of a kind that is not delivered there, and larger than the
envelope limit. Each is refused with the right code and the target's ledger does not
grow. A replayed envelope gets the same receipt bytes back and is stored once; the same
sequence number with other bytes is refused as a replay. TLS clients without a
certificate, or with one that is not pinned, do not get in at all.
"""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.crypto import primitives, tls
from hotline.crypto.card import SignedCard, parse_card
from hotline.crypto.keys import StationIdentity, load_station
from hotline.link import framing
from hotline.localnet import LocalStation
from hotline.wire import envelope as wire
from hotline.wire.envelope import Header, Kind, Precedence
from hotline.wire.messages import MessagePayload
from tests.integration.conftest import Net, counts, link_of, wait_until

pytestmark = pytest.mark.integration

MAX_ENVELOPE = 4096
#: every code an envelope refusal may carry (errors.py and the envelope checks)
TRUST_CODES = {
    "bad_envelope",
    "truncated",
    "too_large",
    "bad_version",
    "bad_suite",
    "bad_kind",
    "bad_signature",
    "unknown_peer",
    "misaddressed",
    "replay",
    "decrypt_failed",
    "clock_skew",
    "untrusted",
}
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@dataclass
class Target:
    station: LocalStation
    card: SignedCard  # the target's card, as its peers hold it
    peer: StationIdentity  # bravo: a paired peer of the target
    client: httpx.Client  # pinned mutual TLS, as bravo

    def entries(self) -> int:
        return counts(self.station)["entries"]

    def post(self, path: str, body: bytes) -> httpx.Response:
        return self.client.post(path, content=body, headers={"content-type": "x/y"})

    def deliver(self, raws: list[bytes]) -> list[framing.Result]:
        r = self.post("/peer/v1/envelopes", framing.encode_batch(raws))
        assert r.status_code == 200, (r.status_code, r.headers.get("x-hotline-error"))
        return framing.decode_results(r.content, expected=len(raws))

    def envelope(
        self,
        *,
        sequence: int,
        text: str = "hello",
        kind: Kind = Kind.MESSAGE,
        sender: str | None = None,
        recipient: str | None = None,
        signing_seed: bytes | None = None,
        encryption_key: bytes | None = None,
        sent_at_us: int | None = None,
    ) -> bytes:
        header = Header(
            kind,
            Precedence.ROUTINE,
            wire.DEFAULT_SUITE if kind.sealed else primitives.SUITE_NONE,
            sender or self.peer.station_id,
            recipient or self.card.card.station_id,
            "working",
            sequence,
            uuid.uuid4(),
            sent_at_us if sent_at_us is not None else time.time_ns() // 1000,
        )
        signer = primitives.Signer(signing_seed or self.peer.signing_seed)
        key = encryption_key or self.card.card.encryption_key
        payload = MessagePayload(text=text).to_bytes()
        return wire.seal_envelope(header, payload, signer, key if kind.sealed else None).raw


def _pinned_client(peer: StationIdentity, card: SignedCard, port: int) -> httpx.Client:
    ctx = tls.client_context(peer.tls_cert_pem, peer.tls_key_pem, card.card.tls_cert_der)
    return _client(ctx, port)


def _client(ctx: ssl.SSLContext, port: int) -> httpx.Client:
    return httpx.Client(
        verify=ctx, base_url=f"https://127.0.0.1:{port}", timeout=15, trust_env=False
    )


def _quiet_entries(st: LocalStation) -> int:
    """The ledger size once nothing appends on its own any more (start-up link test)."""
    last = -1

    def probe() -> int:
        nonlocal last
        before, last = last, counts(st)["entries"]
        time.sleep(0.5)
        return before

    wait_until("the ledger to stop growing", probe, lambda before: before == last, timeout=30)
    return last


@pytest.fixture(scope="module")
def target(module_net: Net) -> Iterator[Target]:
    quiet = {"link_test_interval_s": 3600.0, "max_envelope_bytes": MAX_ENVELOPE}
    a, b = module_net.pair(quiet, quiet)
    a.start()
    b.start()  # so that both lines are UP and link tests stop until the next interval
    for station, other in ((a, "bravo"), (b, "alpha")):
        wait_until(
            f"{station.station_id}'s line to {other} to be UP",
            lambda station=station, other=other: link_of(station, other)["state"],  # type: ignore[misc]
            lambda state: state == "UP",
            timeout=30,
        )
    _quiet_entries(a)
    card = parse_card(a.api("GET", "/api/v1/card")["card"])
    peer = load_station(b.data_dir)
    with _pinned_client(peer, card, a.peer_port) as client:
        yield Target(a, card, peer, client)


def _refused(results: list[framing.Result]) -> list[str]:
    assert all(r.receipt is None for r in results), "an envelope was accepted"
    return [r.refused or "" for r in results]


def _assert_refused(t: Target, r: httpx.Response, n: int) -> list[str]:
    """A whole-request refusal (4xx with a code) or a batch of n refusals."""
    if r.status_code == 200:
        codes = _refused(framing.decode_results(r.content, expected=n))
        assert all(c in TRUST_CODES for c in codes), codes
        return codes
    assert 400 <= r.status_code < 500, r.status_code
    code = r.headers.get("x-hotline-error")
    assert code in TRUST_CODES | {"bad_batch"}, code
    return [code]


# --- hypothesis: garbage of every shape --------------------------------------------------


def test_random_bodies_are_refused(target: Target) -> None:
    before = target.entries()

    @FUZZ
    @given(body=st.binary(max_size=3000))
    def check(body: bytes) -> None:
        r = target.post("/peer/v1/envelopes", body)
        _assert_refused(target, r, 0)
        r = target.post("/peer/v1/link-test", body)
        assert 400 <= r.status_code < 500, r.status_code
        assert r.headers.get("x-hotline-error") in TRUST_CODES

    check()
    assert target.entries() == before


def test_random_envelopes_in_a_valid_batch_are_refused(target: Target) -> None:
    before = target.entries()

    @FUZZ
    @given(raws=st.lists(st.binary(max_size=600), min_size=1, max_size=5))
    def check(raws: list[bytes]) -> None:
        codes = _refused(target.deliver(raws))
        assert all(c in TRUST_CODES for c in codes), codes

    check()
    assert target.entries() == before


def test_mutated_valid_envelopes_are_refused(target: Target) -> None:
    before = target.entries()
    valid = target.envelope(sequence=1000, text="a valid envelope, then damaged")

    @FUZZ
    @given(
        flips=st.lists(
            st.tuples(st.integers(0, len(valid) - 1), st.integers(1, 255)),
            min_size=1,
            max_size=4,
        )
    )
    def check(flips: list[tuple[int, int]]) -> None:
        damaged = bytearray(valid)
        for pos, mask in flips:
            damaged[pos] ^= mask
        if bytes(damaged) == valid:  # two flips of one byte undid each other
            return
        [code] = _refused(target.deliver([bytes(damaged)]))
        assert code in TRUST_CODES, code

    check()
    assert target.entries() == before


def test_truncated_envelopes_are_refused(target: Target) -> None:
    before = target.entries()
    valid = target.envelope(sequence=1001)

    @FUZZ
    @given(cut=st.integers(0, len(valid) - 1))
    def check(cut: int) -> None:
        assert _refused(target.deliver([valid[:cut]])) == ["truncated"]

    check()
    assert target.entries() == before


# --- one case each: the right code for each kind of wrong envelope ------------------------


def _other_version(t: Target) -> bytes:
    raw = t.envelope(sequence=1002)
    signed = bytearray(raw[: -wire.SIGNATURE_LEN])
    signed[4] = wire.VERSION + 1
    return bytes(signed) + primitives.Signer(t.peer.signing_seed).sign(
        wire.SIGN_CONTEXT, bytes(signed)
    )


CASES: dict[str, Callable[[Target], bytes]] = {
    "bad_signature": lambda t: t.envelope(sequence=1003, signing_seed=primitives.new_signing_key()),
    "misaddressed": lambda t: t.envelope(sequence=1004, recipient="charlie"),
    "unknown_peer": lambda t: t.envelope(
        sequence=1005, sender="zulu", signing_seed=primitives.new_signing_key()
    ),
    "bad_version": _other_version,
    "clock_skew": lambda t: t.envelope(
        sequence=1006, sent_at_us=time.time_ns() // 1000 + 3600 * 1_000_000
    ),
    "decrypt_failed": lambda t: t.envelope(
        sequence=1007,
        encryption_key=primitives.encryption_public_key(primitives.new_encryption_key()),
    ),
    "bad_kind": lambda t: t.envelope(sequence=0, kind=Kind.LINK_TEST),
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_wrong_envelope_is_refused_with_its_code(target: Target, code: str) -> None:
    before = target.entries()
    raw = CASES[code](target)
    assert _refused(target.deliver([raw])) == [code]
    assert target.entries() == before


def test_envelope_larger_than_the_limit_is_refused(target: Target) -> None:
    before = target.entries()
    big = target.envelope(sequence=1008, text="x" * (MAX_ENVELOPE + 100))
    assert len(big) > MAX_ENVELOPE
    r = target.post("/peer/v1/envelopes", framing.encode_batch([big]))
    assert r.status_code == 400
    assert r.headers.get("x-hotline-error") == "too_large"
    r = target.post("/peer/v1/link-test", big)
    assert r.status_code == 400
    assert r.headers.get("x-hotline-error") == "too_large"
    assert target.entries() == before


# --- replays --------------------------------------------------------------------------------


def test_replay_gets_the_same_receipt_and_is_stored_once(target: Target) -> None:
    before = target.entries()
    raw = target.envelope(sequence=1, text="first and only")
    [first] = target.deliver([raw])
    assert first.receipt is not None, first.refused
    assert target.entries() == before + 1

    [again] = target.deliver([raw])
    assert again.receipt == first.receipt
    twice = target.deliver([raw, raw])  # the same envelope twice in one batch
    assert [r.receipt for r in twice] == [first.receipt, first.receipt]
    assert target.entries() == before + 1

    other = target.envelope(sequence=1, text="the same sequence, other bytes")
    assert _refused(target.deliver([other])) == ["replay"]
    assert target.entries() == before + 1
    received = target.station.api("GET", "/api/v1/messages", params={"direction": "in"})
    assert [m["body"]["text"] for m in received if m["sequence"] == 1] == ["first and only"]


# --- TLS: no certificate, an unpinned certificate ----------------------------------------


def _assert_cannot_connect(ctx: ssl.SSLContext, port: int) -> None:
    with _client(ctx, port) as c, pytest.raises(httpx.TransportError):
        c.post("/peer/v1/envelopes", content=framing.encode_batch([]))


def test_tls_client_without_certificate_cannot_connect(target: Target) -> None:
    before = target.entries()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=target.card.card.tls_cert_der)
    _assert_cannot_connect(ctx, target.station.peer_port)
    assert target.entries() == before


def test_tls_client_with_unpinned_certificate_cannot_connect(target: Target) -> None:
    before = target.entries()
    key_pem, cert_pem = tls.make_self_signed(target.peer.station_id)
    ctx = tls.client_context(cert_pem, key_pem, target.card.card.tls_cert_der)
    _assert_cannot_connect(ctx, target.station.peer_port)
    assert target.entries() == before


def test_pinned_client_refuses_a_server_with_another_certificate(target: Target) -> None:
    _key, other = tls.make_self_signed(target.card.card.station_id)
    ctx = tls.client_context(target.peer.tls_cert_pem, target.peer.tls_key_pem, tls.cert_der(other))
    _assert_cannot_connect(ctx, target.station.peer_port)


def test_pinned_peer_client_gets_in(target: Target) -> None:
    """The control: the same request with the pinned peer's certificate is answered."""
    r = target.post("/peer/v1/envelopes", framing.encode_batch([]))
    assert r.status_code == 200
    assert framing.decode_results(r.content, expected=0) == []
