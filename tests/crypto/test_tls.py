"""Pinned mutual TLS 1.3: real handshakes over loopback sockets, certificates, pin checks."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from hotline.crypto import tls
from hotline.errors import ConfigError, TrustError, UnknownPeerError
from tests.conftest import IN_CI

from .helpers import identity

TIMEOUT_S = 10.0


@dataclass
class Outcome:
    server_peer_der: bytes | None = None
    server_error: BaseException | None = None
    client_peer_der: bytes | None = None
    client_got: bytes | None = None
    client_error: BaseException | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.server_error is None and self.client_error is None and self.client_got == b"pong"
        )


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> Outcome:
    """One connection over loopback: the server (a thread) answers 'pong' to 'ping'."""
    outcome = Outcome()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT_S)
    port = listener.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            conn.settimeout(TIMEOUT_S)
            with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
                outcome.server_peer_der = tls_conn.getpeercert(binary_form=True)
                if tls_conn.recv(4) == b"ping":
                    tls_conn.sendall(b"pong")
        except (OSError, ssl.SSLError) as exc:
            outcome.server_error = exc

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as raw,
            client_ctx.wrap_socket(raw, server_hostname="alpha") as tls_conn,
        ):
            outcome.client_peer_der = tls_conn.getpeercert(binary_form=True)
            outcome.extra["version"] = tls_conn.version()
            tls_conn.sendall(b"ping")
            outcome.client_got = tls_conn.recv(4)
            if not outcome.client_got:  # server closed after refusing us
                raise ConnectionResetError("closed by server")
    except (OSError, ssl.SSLError) as exc:
        outcome.client_error = exc
    finally:
        thread.join(TIMEOUT_S)
        listener.close()
    assert not thread.is_alive()
    return outcome


def material(station_id: str) -> tuple[bytes, bytes, bytes]:
    """(cert_pem, key_pem, cert_der) of a cached in-memory identity."""
    ident = identity(station_id)
    return ident.tls_cert_pem, ident.tls_key_pem, tls.cert_der(ident.tls_cert_pem)


# --- handshakes -------------------------------------------------------------------------


def test_pinned_peers_complete_a_tls13_handshake_and_see_each_other() -> None:
    a_cert, a_key, a_der = material("alpha")
    b_cert, b_key, b_der = material("bravo")
    result = handshake(
        tls.server_context(a_cert, a_key, [b_der]), tls.client_context(b_cert, b_key, a_der)
    )
    assert result.ok, result
    assert result.extra["version"] == "TLSv1.3"
    assert result.server_peer_der == b_der
    assert result.client_peer_der == a_der
    tls.peer_cert_matches(result.server_peer_der, identity("bravo").card().card)
    tls.peer_cert_matches(result.client_peer_der, identity("alpha").card().card)


def test_unknown_client_certificate_is_refused() -> None:
    a_cert, a_key, a_der = material("alpha")
    _, _, b_der = material("bravo")
    c_cert, c_key, _ = material("charlie")
    result = handshake(
        tls.server_context(a_cert, a_key, [b_der]), tls.client_context(c_cert, c_key, a_der)
    )
    assert not result.ok
    assert isinstance(result.server_error, ssl.SSLCertVerificationError)
    assert result.client_error is not None
    assert result.client_got != b"pong"


def test_server_that_is_not_the_pinned_one_is_refused() -> None:
    _, _, a_der = material("alpha")
    b_cert, b_key, b_der = material("bravo")
    c_cert, c_key, _ = material("charlie")
    # charlie answers where the client expected alpha; charlie would even accept bravo
    result = handshake(
        tls.server_context(c_cert, c_key, [b_der]), tls.client_context(b_cert, b_key, a_der)
    )
    assert isinstance(result.client_error, ssl.SSLCertVerificationError)
    assert result.client_got is None


def test_client_without_certificate_is_refused() -> None:
    a_cert, a_key, a_der = material("alpha")
    _, _, b_der = material("bravo")
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.check_hostname = False
    bare.load_verify_locations(cadata=a_der)
    result = handshake(tls.server_context(a_cert, a_key, [b_der]), bare)
    assert isinstance(result.server_error, ssl.SSLError)
    assert result.client_got != b"pong"


def test_server_with_no_peers_refuses_every_client() -> None:
    a_cert, a_key, a_der = material("alpha")
    b_cert, b_key, _ = material("bravo")
    result = handshake(
        tls.server_context(a_cert, a_key, []), tls.client_context(b_cert, b_key, a_der)
    )
    assert isinstance(result.server_error, ssl.SSLCertVerificationError)
    assert not result.ok
    # not even a client presenting the server's own certificate
    result = handshake(
        tls.server_context(a_cert, a_key, []), tls.client_context(a_cert, a_key, a_der)
    )
    assert not result.ok


def test_add_trusted_peer_admits_a_refused_client_without_a_new_context() -> None:
    a_cert, a_key, a_der = material("alpha")
    _, _, b_der = material("bravo")
    c_cert, c_key, c_der = material("charlie")
    server = tls.server_context(a_cert, a_key, [b_der])
    client = tls.client_context(c_cert, c_key, a_der)
    assert not handshake(server, client).ok
    tls.add_trusted_peer(server, c_der)
    result = handshake(server, client)
    assert result.ok, result
    assert result.server_peer_der == c_der


def test_server_tells_several_trusted_peers_apart() -> None:
    a_cert, a_key, a_der = material("alpha")
    cards = [identity(s).card().card for s in ("bravo", "charlie")]
    server = tls.server_context(a_cert, a_key, [c.tls_cert_der for c in cards])
    for station_id, card in zip(("bravo", "charlie"), cards, strict=True):
        cert, key, _ = material(station_id)
        result = handshake(server, tls.client_context(cert, key, a_der))
        assert result.ok, result
        assert tls.identify_peer(result.server_peer_der, cards) == card


def test_tls12_client_is_refused() -> None:
    a_cert, a_key, a_der = material("alpha")
    b_cert, b_key, b_der = material("bravo")
    old = tls.client_context(b_cert, b_key, a_der)
    old.minimum_version = ssl.TLSVersion.TLSv1_2
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    result = handshake(tls.server_context(a_cert, a_key, [b_der]), old)
    assert result.server_error is not None
    assert result.client_error is not None


def test_contexts_are_tls13_only_and_require_certificates() -> None:
    a_cert, a_key, a_der = material("alpha")
    for ctx in (tls.server_context(a_cert, a_key, []), tls.client_context(a_cert, a_key, a_der)):
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
        assert ctx.maximum_version == ssl.TLSVersion.TLSv1_3
        assert ctx.verify_mode == ssl.CERT_REQUIRED
        assert ctx.verify_flags & ssl.VERIFY_X509_STRICT
    assert tls.server_context(a_cert, a_key, []).cert_store_stats()["x509"] == 0


# --- pin checks ---------------------------------------------------------------------


def test_peer_cert_matches_refuses_other_missing_and_empty_certificates() -> None:
    bravo = identity("bravo").card().card
    _, _, c_der = material("charlie")
    for presented in (c_der, None, b"", bravo.tls_cert_der[:-1]):
        with pytest.raises(TrustError) as info:
            tls.peer_cert_matches(presented, bravo)
        assert info.value.code == "tls_pin_mismatch"


def test_identify_peer_refuses_unknown_certificates() -> None:
    cards = [identity("bravo").card().card]
    _, _, c_der = material("charlie")
    for presented in (c_der, None, b""):
        with pytest.raises(UnknownPeerError):
            tls.identify_peer(presented, cards)
    with pytest.raises(UnknownPeerError):
        tls.identify_peer(cards[0].tls_cert_der, [])


def test_add_trusted_peer_refuses_garbage() -> None:
    a_cert, a_key, _ = material("alpha")
    ctx = tls.server_context(a_cert, a_key, [])
    key = ec.generate_private_key(ec.SECP256R1())
    _, _, b_der = material("bravo")
    _, _, c_der = material("charlie")
    for garbage in (
        b"",
        b"\x30\x03\x02\x01\x01",
        b"not a cert",
        b_der + c_der,  # two certificates in one: only one may be pinned at a time
        b_der + b"\x00",
        _cert(key, "ca", ca=True, san=["ca"]),
    ):
        with pytest.raises(tls.CertificateError):
            tls.add_trusted_peer(ctx, garbage)


# --- certificates -----------------------------------------------------------------------


def test_self_signed_certificate_properties() -> None:
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    key_pem, cert_pem = tls.make_self_signed("alpha", now=now)
    cert = x509.load_pem_x509_certificate(cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["alpha", "localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - now >= dt.timedelta(days=3650)
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP256R1)
    tls.check_key_matches(cert_pem, key_pem)
    tls.check_card_cert(tls.cert_der(cert_pem), "alpha")
    assert tls.cert_pem(tls.cert_der(cert_pem)) == cert_pem


@pytest.mark.skipif(
    shutil.which("openssl") is None and not IN_CI, reason="openssl command not installed"
)
@pytest.mark.parametrize("purpose", ["sslserver", "sslclient"])
def test_openssl_accepts_the_pinned_certificate_as_its_own_anchor(
    tmp_path: Path, purpose: str
) -> None:
    cert_pem = identity("alpha").tls_cert_pem
    other_pem = identity("bravo").tls_cert_pem
    (tmp_path / "alpha.pem").write_bytes(cert_pem)
    (tmp_path / "bravo.pem").write_bytes(other_pem)
    base = ["openssl", "verify", "-x509_strict", "-purpose", purpose]
    ok = subprocess.run(
        [*base, "-CAfile", tmp_path / "alpha.pem", tmp_path / "alpha.pem"],
        capture_output=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    refused = subprocess.run(
        [*base, "-CAfile", tmp_path / "bravo.pem", tmp_path / "alpha.pem"],
        capture_output=True,
        check=False,
    )
    assert refused.returncode != 0


def _cert(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    subject: str,
    *,
    signer: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    ca: bool = False,
    san: list[str] | None = None,
) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False
        )
    return builder.sign(signer or key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_check_card_cert_refuses_unacceptable_certificates() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    cases = {
        "empty": b"",
        "too large": b"\x30" * (tls.MAX_CERT_DER + 1),
        "garbage": b"\x30\x03\x02\x01\x01",
        "a CA": _cert(key, "alpha", ca=True, san=["alpha"]),
        "not self-signed": _cert(key, "alpha", signer=other, san=["alpha"]),
        "no SAN": _cert(key, "alpha"),
        "SAN of another": _cert(key, "alpha", san=["bravo"]),
        "CN of another": _cert(key, "bravo", san=["alpha"]),
        "P-384": _cert(ec.generate_private_key(ec.SECP384R1()), "alpha", san=["alpha"]),
        "RSA": _cert(rsa.generate_private_key(65537, 2048), "alpha", san=["alpha"]),
    }
    tls.check_card_cert(_cert(key, "alpha", san=["alpha"]), "alpha")  # the control case
    for der in cases.values():
        with pytest.raises(tls.CertificateError, match="certificate"):
            tls.check_card_cert(der, "alpha")


def test_broken_or_mismatched_local_tls_material_is_a_config_error() -> None:
    a_cert, _, a_der = material("alpha")
    b_cert, b_key, _ = material("bravo")
    with pytest.raises(ConfigError):
        tls.server_context(a_cert, b_key, [])
    with pytest.raises(ConfigError):
        tls.client_context(a_cert, b"not a key", a_der)
    with pytest.raises(ConfigError):
        tls.check_key_matches(a_cert, b_key)
    with pytest.raises(ConfigError):
        tls.cert_der(b"not a cert")
    with pytest.raises(tls.CertificateError):
        tls.cert_pem(b"not a cert")
    tls.check_key_matches(b_cert, b_key)
