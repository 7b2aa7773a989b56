"""TLS material for the peer line: self-signed certificates and pinned mutual-TLS contexts.

Owns: making a station's self-signed certificate, checking a certificate found on a
station card, and building ``ssl.SSLContext`` objects for the peer endpoint (server)
and for connections to one peer (client). This and ``primitives`` are the only modules
that import ``cryptography``; this one is the only one that imports ``cryptography.x509``.
Must not touch: the store, the network (contexts are built here, sockets are opened by
the link), the station's key files.

Trust model: there is no certificate authority. Each station's certificate travels on
its self-signed station card, which officers check by reading fingerprints aloud; a
context trusts exactly the certificates of the peers' cards (``cadata``) and nothing
else (no system store is ever loaded). Both sides present certificates (mutual TLS),
TLS 1.3 only. After a handshake the link still maps the certificate the connection
presented to a card with ``identify_peer`` / ``peer_cert_matches`` (exact DER,
constant-time), never by subject name.

Private keys never stay on disk unsealed: ``ssl`` can only load a key from a file, so
the key is re-encrypted in memory under a one-time random password, written to a
0600 file in a fresh 0700 temporary directory (on tmpfs when ``/dev/shm`` exists),
loaded, and removed at once.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import ssl
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hotline.crypto import primitives
from hotline.errors import ConfigError, TrustError, UnknownPeerError

if TYPE_CHECKING:
    from hotline.crypto.card import StationCard

#: Validity of a station certificate. Re-issue (a new card) before it runs out.
CERT_VALIDITY = dt.timedelta(days=3652)
#: Start of validity is backdated so that a peer whose clock is behind still accepts it.
CERT_BACKDATE = dt.timedelta(days=1)
#: Largest certificate accepted from a card, in bytes of DER.
MAX_CERT_DER = 8 * 1024

_LOOPBACK_IPS = (ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1"))


class CertificateError(TrustError):
    """A certificate from a card or a connection is malformed or not acceptable."""

    code = "bad_certificate"


# --- certificates ----------------------------------------------------------------------


def make_self_signed(station_id: str, *, now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """A fresh ECDSA P-256 key and self-signed certificate for ``station_id``.

    Returns ``(key_pem, cert_pem)``: the key as unencrypted PKCS#8 PEM (the caller seals
    it before it reaches a disk), the certificate as PEM. The certificate names the
    station (CN and SAN ``DNS:<station_id>``) and loopback (``DNS:localhost``,
    ``IP:127.0.0.1``, ``IP:::1``), is valid for ten years, is not a CA
    (``basicConstraints CA:FALSE``) and may serve as both TLS server and client.
    Pinning such a certificate as the only trust anchor works with OpenSSL (tested).
    """
    when = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, station_id)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    sans: list[x509.GeneralName] = [x509.DNSName(station_id), x509.DNSName("localhost")]
    sans += [x509.IPAddress(ip) for ip in _LOOPBACK_IPS]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(when - CERT_BACKDATE)
        .not_valid_after(when + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def cert_der(cert_pem: bytes) -> bytes:
    """The DER bytes of a PEM certificate (what cards carry and connections present)."""
    try:
        return x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    except ValueError as exc:
        raise ConfigError(
            "the station's TLS certificate is not a valid PEM certificate",
            code="bad_tls_cert",
            hint="the station's data directory is damaged; restore it from backup",
        ) from exc


def check_key_matches(cert_pem: bytes, key_pem: bytes) -> None:
    """Raise ``ConfigError`` unless ``key_pem`` is the private key of ``cert_pem``."""
    key = _load_key(key_pem)
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise ConfigError(
            "the station's TLS certificate is not valid PEM", code="bad_tls_cert"
        ) from exc
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if not primitives.equal(
        key.public_key().public_bytes(*spki), cert.public_key().public_bytes(*spki)
    ):
        raise ConfigError(
            "the station's TLS key does not match its certificate",
            code="bad_tls_key",
            hint="the station's data directory is damaged; restore it from backup",
        )


def cert_pem(der: bytes) -> bytes:
    """The PEM form of a DER certificate."""
    try:
        return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    except ValueError as exc:
        raise CertificateError("not a DER certificate") from exc


def check_card_cert(der: bytes, station_id: str) -> None:
    """Check a certificate carried on a station card; raise ``CertificateError``.

    It must be strict DER, at most ``MAX_CERT_DER`` bytes, self-signed with its own key
    (ECDSA P-256 or Ed25519), not a CA, and name the station (CN and SAN DNS name).
    Validity dates are checked by the TLS handshake, not here.
    """
    cert = _parse_der(der, "TLS certificate on the card")
    public = cert.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        if not isinstance(public.curve, ec.SECP256R1):
            raise CertificateError("TLS certificate on the card uses an unsupported curve")
    elif not isinstance(public, ed25519.Ed25519PublicKey):
        raise CertificateError("TLS certificate on the card has an unsupported key type")
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateError("TLS certificate on the card is not self-signed") from exc
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise CertificateError("TLS certificate on the card lacks a required extension") from exc
    except ValueError as exc:  # duplicate or malformed extensions
        raise CertificateError("TLS certificate on the card has malformed extensions") from exc
    if constraints.ca:
        raise CertificateError("TLS certificate on the card must not be a CA")
    if station_id not in names.get_values_for_type(x509.DNSName):
        raise CertificateError("TLS certificate on the card does not name the station")
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [a.value for a in common_names] != [station_id]:
        raise CertificateError("TLS certificate subject is not the station id")


# --- contexts ----------------------------------------------------------------------------


def server_context(
    cert_pem: bytes, key_pem: bytes, peer_certs_der: Sequence[bytes]
) -> ssl.SSLContext:
    """A context for the peer endpoint: TLS 1.3, client certificate required.

    Trusts exactly ``peer_certs_der`` (the certificates on the peers' cards); with no
    peers, every client is refused. Session tickets are off so every connection
    verifies the client certificate afresh. Add a peer later with ``add_trusted_peer``;
    removing one needs a new context (build it and swap it in for new connections).
    """
    ctx = _base_context(ssl.PROTOCOL_TLS_SERVER, cert_pem, key_pem)
    ctx.num_tickets = 0
    for der in peer_certs_der:
        add_trusted_peer(ctx, der)
    return ctx


def add_trusted_peer(ctx: ssl.SSLContext, peer_cert_der: bytes) -> None:
    """Trust one more peer certificate; handshakes from now on accept it, no restart.

    Refuses anything but exactly one strict-DER certificate that is not a CA: a
    pinned certificate must not be able to vouch for any other.
    """
    cert = _parse_der(peer_cert_der, "peer certificate")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    except ValueError as exc:
        raise CertificateError("peer certificate has malformed extensions") from exc
    if constraints is not None and constraints.ca:
        raise CertificateError("peer certificate is a CA certificate; only leaves are pinned")
    try:
        ctx.load_verify_locations(cadata=peer_cert_der)
    except ssl.SSLError as exc:
        raise CertificateError("peer certificate cannot be loaded as a trust anchor") from exc


def client_context(cert_pem: bytes, key_pem: bytes, peer_cert_der: bytes) -> ssl.SSLContext:
    """A context for connections to one peer: TLS 1.3, our certificate, one pinned anchor.

    Hostname checking is OFF, on purpose: the context trusts one certificate only (the
    peer card's), whose key the server proves it holds in the handshake, so a completed
    handshake already means "this is that station" whatever address was dialled.
    Endpoint URLs may name any address or DNS name (NAT, relays, renumbering) that the
    certificate's SAN does not list, and a name check would add no assurance over the
    pin. Pass ``server_hostname=<station id>`` anyway (it is sent as SNI), and confirm
    with ``peer_cert_matches`` after the handshake if the connection may have been built
    elsewhere.
    """
    ctx = _base_context(ssl.PROTOCOL_TLS_CLIENT, cert_pem, key_pem)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    add_trusted_peer(ctx, peer_cert_der)
    return ctx


def peer_cert_matches(der_from_connection: bytes | None, card: StationCard) -> None:
    """Raise ``TrustError`` unless the connection's certificate is the card's (exact DER)."""
    if not der_from_connection or not primitives.equal(der_from_connection, card.tls_cert_der):
        raise TrustError(
            f"the TLS certificate presented is not the one on station {card.station_id}'s card",
            code="tls_pin_mismatch",
            hint="the connection is not from the station on the card; it was closed",
        )


def identify_peer(der_from_connection: bytes | None, cards: Iterable[StationCard]) -> StationCard:
    """The card whose certificate the connection presented; ``UnknownPeerError`` if none.

    Compares every card in constant time, so timing does not reveal which peer matched.
    """
    found: StationCard | None = None
    presented = der_from_connection or b""
    for card in cards:
        if presented and primitives.equal(presented, card.tls_cert_der):
            found = card
    if found is None:
        raise UnknownPeerError("the TLS certificate presented is not on any peer's card")
    return found


def _parse_der(der: object, what: str) -> x509.Certificate:
    """Exactly one certificate in strict DER (no trailing bytes), at most MAX_CERT_DER."""
    if not isinstance(der, bytes) or not der or len(der) > MAX_CERT_DER:
        raise CertificateError(f"{what} is empty, too large or not bytes")
    try:
        cert = x509.load_der_x509_certificate(der)
        reencoded = cert.public_bytes(serialization.Encoding.DER)
    except ValueError as exc:
        raise CertificateError(f"{what} does not parse as DER") from exc
    if not primitives.equal(reencoded, der):
        raise CertificateError(f"{what} is not in strict DER")
    return cert


def _base_context(protocol: ssl._SSLMethod, cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(protocol)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    load_chain(ctx, cert_pem, key_pem)
    return ctx


def load_chain(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """Load our certificate and private key into ``ctx`` without leaving the key on disk.

    The key is re-encrypted under a one-time random password in memory, written with the
    certificate to a 0600 file in a fresh private directory, loaded, and removed at once;
    the plaintext key never reaches a file system.
    """
    key = _load_key(key_pem)
    password = primitives.random_bytes(32).hex().encode()
    wrapped = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    private_dir = tempfile.mkdtemp(prefix="hotline-tls-", dir=_private_tmp_root())
    try:
        path = Path(private_dir) / "chain.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(cert_pem.rstrip(b"\n") + b"\n" + wrapped)
        try:
            ctx.load_cert_chain(path, password=password)
        except ssl.SSLError as exc:
            raise ConfigError(
                "the station's TLS certificate and key cannot be loaded together",
                code="bad_tls_key",
                hint="the key does not match the certificate; restore the data directory",
            ) from exc
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)


def _load_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            "the station's TLS key is not a valid unencrypted PEM private key",
            code="bad_tls_key",
            hint="the station's data directory is damaged; restore it from backup",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise ConfigError("the station's TLS key has an unsupported type", code="bad_tls_key")
    return key


def _private_tmp_root() -> str | None:
    shm = "/dev/shm"  # noqa: S108 - a tmpfs; the file inside is 0600 in a 0700 directory
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None
