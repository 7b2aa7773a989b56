"""A station's identity: its private keys on disk and its public description.

Owns the layout of a station's identity in its data directory and nothing else there::

    data_dir/station.json      public: id, display name, endpoints, created_at, TLS cert
    data_dir/keys/             0700
        signing.key            Ed25519 seed: envelopes and the station card
        encryption.key         X25519 private key: HPKE recipient
        log.key                Ed25519 seed: ledger checkpoints (signed notes)
        cosign.key             Ed25519 seed: cosignatures on peers' checkpoints
        tls.key                PEM private key of the self-signed TLS certificate

Key files are 0600, written once with ``O_EXCL`` and never rewritten. With a
passphrase each file is sealed (``primitives.seal_with_passphrase``: Argon2id and
ChaCha20-Poly1305); without one it holds the raw secret. Loading refuses key files or a
key directory that other users can read or write (as ssh does), symlinks, a mix of
sealed and unsealed files, and anything that does not parse.
Must not touch: the store, the network, any other file in the data directory.
Secrets are held in memory as bytes (Python cannot wipe them); they are never logged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotline.crypto import primitives, tls
from hotline.crypto.card import (
    KEY_LEN,
    STATION_ID_PATTERN,
    SignedCard,
    StationCard,
    check_display_name,
    check_endpoints,
    check_station_id,
    rfc3339_utc,
    sign_card,
)
from hotline.errors import ConfigError, HotlineError

__all__ = [
    "STATION_ID_PATTERN",
    "StationIdentity",
    "create_station",
    "load_station",
    "station_exists",
    "update_endpoints",
]

STATION_FILE = "station.json"
KEYS_DIR = "keys"
_SEED_FILES = ("signing", "encryption", "log", "cosign")
_TLS_FILE = "tls"
_STATION_FORMAT = 1
_MAX_STATION_FILE = 64 * 1024
_MAX_KEY_FILE = 16 * 1024


@dataclass(frozen=True, slots=True)
class StationIdentity:
    """Everything secret and public that makes a station itself. Never log it."""

    station_id: str
    display_name: str
    signing_seed: bytes
    encryption_private: bytes
    log_seed: bytes
    cosign_seed: bytes
    tls_key_pem: bytes
    tls_cert_pem: bytes
    endpoints: tuple[str, ...]
    created_at: str = ""

    def __repr__(self) -> str:  # keep seeds out of logs and tracebacks
        return f"StationIdentity(station_id={self.station_id!r}, endpoints={self.endpoints!r})"

    def card(self) -> SignedCard:
        """Build and self-sign this station's card (deterministic for the same identity)."""
        created_at = self.created_at or rfc3339_utc(dt.datetime.now(dt.UTC))
        return sign_card(
            StationCard(
                station_id=self.station_id,
                display_name=self.display_name,
                signing_key=primitives.signing_public_key(self.signing_seed),
                encryption_key=primitives.encryption_public_key(self.encryption_private),
                log_key=primitives.signing_public_key(self.log_seed),
                cosign_key=primitives.signing_public_key(self.cosign_seed),
                tls_cert_der=tls.cert_der(self.tls_cert_pem),
                endpoints=self.endpoints,
                created_at=created_at,
            ),
            self.signing_seed,
        )


def station_exists(data_dir: Path) -> bool:
    """True if ``data_dir`` holds a station (or the remains of a failed creation)."""
    return (data_dir / STATION_FILE).exists() or (data_dir / KEYS_DIR).exists()


def create_station(
    data_dir: Path,
    station_id: str,
    display_name: str,
    endpoints: Sequence[str],
    passphrase: str | None = None,
    *,
    now: dt.datetime | None = None,
) -> StationIdentity:
    """Make a new station's keys and certificate, write them to ``data_dir``, return them.

    Refuses (``ConfigError``) an invalid id, name or endpoint, an empty passphrase, and a
    data directory that already holds a station. ``station.json`` is written last, so a
    crash part-way leaves a ``keys/`` directory and no station (and creation refuses
    until it is removed).
    """
    check_station_id(station_id, ConfigError)
    check_display_name(display_name, ConfigError)
    endpoints = check_endpoints(list(endpoints), ConfigError)
    if passphrase is not None and not passphrase:
        raise ConfigError("the passphrase is empty", hint="give a passphrase, or none")
    when = now or dt.datetime.now(dt.UTC)
    if station_exists(data_dir):
        raise ConfigError(
            f"a station already exists in {data_dir}",
            code="station_exists",
            hint="use another --data-dir, or remove that directory if it is really unused "
            "(its keys are that station's identity: they cannot be recovered)",
        )
    tls_key_pem, tls_cert_pem = tls.make_self_signed(station_id, now=when)
    identity = StationIdentity(
        station_id=station_id,
        display_name=display_name,
        signing_seed=primitives.new_signing_key(),
        encryption_private=primitives.new_encryption_key(),
        log_seed=primitives.new_signing_key(),
        cosign_seed=primitives.new_signing_key(),
        tls_key_pem=tls_key_pem,
        tls_cert_pem=tls_cert_pem,
        endpoints=endpoints,
        created_at=rfc3339_utc(when),
    )
    identity.card()  # refuses anything a peer would refuse, before writing
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys_dir = data_dir / KEYS_DIR
    try:
        keys_dir.mkdir(mode=0o700)
    except FileExistsError as exc:
        raise ConfigError(f"a station already exists in {data_dir}", code="station_exists") from exc
    os.chmod(keys_dir, 0o700)
    secrets = {
        "signing": identity.signing_seed,
        "encryption": identity.encryption_private,
        "log": identity.log_seed,
        "cosign": identity.cosign_seed,
        _TLS_FILE: tls_key_pem,
    }
    for name, secret in secrets.items():
        blob = secret if passphrase is None else primitives.seal_with_passphrase(passphrase, secret)
        _write_new(keys_dir / f"{name}.key", blob, 0o600)
    _fsync_dir(keys_dir)
    _write_station_file(data_dir, _public_document(identity))
    return identity


def load_station(data_dir: Path, passphrase: str | None = None) -> StationIdentity:
    """Read the station in ``data_dir``; ``ConfigError`` with a hint on every failure."""
    station_file = data_dir / STATION_FILE
    keys_dir = data_dir / KEYS_DIR
    if not station_file.is_file() or not keys_dir.is_dir():
        raise ConfigError(
            f"no station in {data_dir}",
            code="no_station",
            hint="create one with 'hotline init', or pass the right --data-dir",
        )
    public = _read_station_file(data_dir)
    _check_private(keys_dir, 0o700, directory=True)
    blobs = {name: _read_key_file(keys_dir / f"{name}.key") for name in (*_SEED_FILES, _TLS_FILE)}
    sealed = {primitives.is_passphrase_sealed(b) for b in blobs.values()}
    if len(sealed) != 1:
        raise ConfigError(
            "some key files are sealed with a passphrase and some are not",
            code="corrupt_keys",
            hint="the key directory was tampered with or mixed up; restore it from backup",
        )
    if sealed == {True}:
        if not passphrase:
            raise ConfigError(
                "the station's key files are sealed with a passphrase and none was given",
                code="passphrase_required",
                hint="set HOTLINE_PASSPHRASE or pass --passphrase",
            )
        secrets = {
            name: primitives.open_with_passphrase(passphrase, b) for name, b in blobs.items()
        }
    else:
        if passphrase:
            raise ConfigError(
                "a passphrase was given but the station's key files are not sealed",
                code="unexpected_passphrase",
                hint="unset HOTLINE_PASSPHRASE for this station (or check --data-dir)",
            )
        secrets = blobs
    for name in _SEED_FILES:
        if len(secrets[name]) != KEY_LEN:
            raise _corrupt(f"key file {name}.key does not hold a {KEY_LEN}-byte key")
    identity = StationIdentity(
        station_id=public["station_id"],
        display_name=public["display_name"],
        signing_seed=secrets["signing"],
        encryption_private=secrets["encryption"],
        log_seed=secrets["log"],
        cosign_seed=secrets["cosign"],
        tls_key_pem=secrets[_TLS_FILE],
        tls_cert_pem=public["tls_cert_pem"],
        endpoints=public["endpoints"],
        created_at=public["created_at"],
    )
    try:
        identity.card()
        tls.check_key_matches(identity.tls_cert_pem, identity.tls_key_pem)
    except HotlineError as exc:
        raise _corrupt(f"the station's keys and station.json do not fit together: {exc}") from exc
    except ValueError as exc:
        raise _corrupt("a key file does not hold a valid key") from exc
    return identity


def update_endpoints(data_dir: Path, endpoints: Sequence[str]) -> None:
    """Replace the endpoints recorded in ``station.json`` (atomically); keys are untouched."""
    checked = check_endpoints(list(endpoints), ConfigError)
    public = _read_station_file(data_dir)
    public["endpoints"] = list(checked)
    public["tls_cert_pem"] = public["tls_cert_pem"].decode("ascii")
    _write_station_file(data_dir, public)


# --- files --------------------------------------------------------------------------------


def _corrupt(message: str) -> ConfigError:
    return ConfigError(
        message, code="corrupt_keys", hint="the data directory is damaged; restore it from backup"
    )


def _public_document(identity: StationIdentity) -> dict[str, Any]:
    return {
        "hotline_station": _STATION_FORMAT,
        "station_id": identity.station_id,
        "display_name": identity.display_name,
        "endpoints": list(identity.endpoints),
        "created_at": identity.created_at,
        "tls_cert_pem": identity.tls_cert_pem.decode("ascii"),
    }


def _write_station_file(data_dir: Path, document: dict[str, Any]) -> None:
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    target = data_dir / STATION_FILE
    temporary = data_dir / f".{STATION_FILE}.{primitives.random_bytes(6).hex()}.tmp"
    _write_new(temporary, text.encode(), 0o644)
    os.replace(temporary, target)
    _fsync_dir(data_dir)


def _read_station_file(data_dir: Path) -> dict[str, Any]:
    path = data_dir / STATION_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no station in {data_dir}",
            code="no_station",
            hint="create one with 'hotline init', or pass the right --data-dir",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if len(raw) > _MAX_STATION_FILE:
        raise _corrupt(f"{path} is too large")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _corrupt(f"{path} is not valid JSON") from exc
    expected = {
        "hotline_station",
        "station_id",
        "display_name",
        "endpoints",
        "created_at",
        "tls_cert_pem",
    }
    if (
        not isinstance(doc, dict)
        or set(doc) != expected
        or type(doc["hotline_station"]) is not int
        or doc["hotline_station"] != _STATION_FORMAT
    ):
        raise _corrupt(f"{path} is not a hotline station file")
    try:
        check_station_id(doc["station_id"], ConfigError)
        check_display_name(doc["display_name"], ConfigError)
        doc["endpoints"] = check_endpoints(doc["endpoints"], ConfigError)
    except ConfigError as exc:
        raise _corrupt(f"{path}: {exc.message}") from exc
    if not isinstance(doc["created_at"], str) or not isinstance(doc["tls_cert_pem"], str):
        raise _corrupt(f"{path} has a field of the wrong type")
    try:
        doc["tls_cert_pem"] = doc["tls_cert_pem"].encode("ascii")
    except UnicodeEncodeError as exc:
        raise _corrupt(f"{path}: the TLS certificate is not PEM") from exc
    return doc


def _check_private(path: Path, max_mode: int, *, directory: bool) -> os.stat_result:
    try:
        st = os.lstat(path)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path} is missing",
            code="corrupt_keys",
            hint="the station's key directory is incomplete; restore it from backup",
        ) from exc
    kind_ok = stat.S_ISDIR(st.st_mode) if directory else stat.S_ISREG(st.st_mode)
    if not kind_ok:
        what = "a directory" if directory else "a regular file (not a symlink)"
        raise ConfigError(f"{path} is not {what}", code="insecure_keys")
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ConfigError(
            f"{path} is accessible by other users (mode {stat.S_IMODE(st.st_mode):04o})",
            code="insecure_keys",
            hint=f"run: chmod {max_mode:o} {path}  (and check who may have copied it)",
        )
    getuid = getattr(os, "getuid", None)
    if getuid is not None and st.st_uid != getuid():
        raise ConfigError(
            f"{path} belongs to another user (uid {st.st_uid})",
            code="insecure_keys",
            hint=f"run the station as the owner of {path}, or chown it",
        )
    return st


def _read_key_file(path: Path) -> bytes:
    _check_private(path, 0o600, directory=False)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", code="corrupt_keys") from exc
    with os.fdopen(fd, "rb") as fh:
        if stat.S_IMODE(os.fstat(fh.fileno()).st_mode) & 0o077:  # changed since lstat
            raise ConfigError(f"{path} is accessible by other users", code="insecure_keys")
        blob = fh.read(_MAX_KEY_FILE + 1)
    if not blob or len(blob) > _MAX_KEY_FILE:
        raise _corrupt(f"{path} is empty or too large for a key file")
    return blob


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
