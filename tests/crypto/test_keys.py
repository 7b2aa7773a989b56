"""Station identity on disk: file modes, refusals, passphrase sealing, corruption."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.crypto import primitives, tls
from hotline.crypto.card import parse_card
from hotline.crypto.keys import (
    STATION_ID_PATTERN,
    StationIdentity,
    create_station,
    load_station,
    station_exists,
    update_endpoints,
)
from hotline.errors import ConfigError

ENDPOINTS = ["https://127.0.0.1:8471"]
KEY_FILES = ("signing.key", "encryption.key", "log.key", "cosign.key", "tls.key")


def make(
    data_dir: Path, passphrase: str | None = None, station_id: str = "alpha"
) -> StationIdentity:
    return create_station(data_dir, station_id, "Alpha HQ", ENDPOINTS, passphrase)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_writes_private_key_files_and_a_public_station_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "station"
    ident = make(data_dir)
    keys_dir = data_dir / "keys"
    assert mode(keys_dir) == 0o700
    assert sorted(p.name for p in keys_dir.iterdir()) == sorted(KEY_FILES)
    for name in KEY_FILES:
        assert mode(keys_dir / name) == 0o600
    assert (keys_dir / "signing.key").read_bytes() == ident.signing_seed
    public = json.loads((data_dir / "station.json").read_text())
    assert public["station_id"] == "alpha"
    assert public["display_name"] == "Alpha HQ"
    assert public["endpoints"] == ENDPOINTS
    assert public["tls_cert_pem"].encode() == ident.tls_cert_pem
    text = (data_dir / "station.json").read_bytes()
    assert b"PRIVATE KEY" not in text
    for secret in (ident.signing_seed, ident.encryption_private, ident.log_seed, ident.cosign_seed):
        assert secret not in text
        assert secret.hex().encode() not in text


def test_modes_hold_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        make(tmp_path / "s")
    finally:
        os.umask(old)
    assert mode(tmp_path / "s" / "keys") == 0o700
    assert all(mode(tmp_path / "s" / "keys" / n) == 0o600 for n in KEY_FILES)


def test_load_returns_the_created_identity(tmp_path: Path) -> None:
    created = make(tmp_path)
    loaded = load_station(tmp_path)
    assert loaded == created
    assert loaded.card() == created.card()
    assert len({created.signing_seed, created.log_seed, created.cosign_seed}) == 3
    card = parse_card(loaded.card().to_text()).card
    assert card.signing_key == primitives.signing_public_key(created.signing_seed)


def test_created_at_is_recorded_and_on_the_card(tmp_path: Path) -> None:
    now = dt.datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=dt.UTC)
    ident = create_station(tmp_path, "alpha", "Alpha HQ", ENDPOINTS, now=now)
    assert ident.created_at == "2026-03-04T05:06:07Z"
    assert load_station(tmp_path).card().card.created_at == "2026-03-04T05:06:07Z"


def test_repr_does_not_show_secrets(tmp_path: Path) -> None:
    ident = make(tmp_path)
    shown = repr(ident)
    assert "alpha" in shown
    assert ident.signing_seed.hex() not in shown
    assert repr(ident.signing_seed) not in shown
    assert "PRIVATE" not in shown


def test_create_refuses_an_existing_station(tmp_path: Path) -> None:
    first = make(tmp_path)
    with pytest.raises(ConfigError) as info:
        make(tmp_path, station_id="bravo")
    assert info.value.code == "station_exists"
    assert info.value.hint
    assert load_station(tmp_path) == first  # untouched


def test_create_refuses_the_remains_of_a_failed_creation(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    assert station_exists(tmp_path)
    with pytest.raises(ConfigError) as info:
        make(tmp_path)
    assert info.value.code == "station_exists"


STATION_IDS = [
    ("alpha", True),
    ("a", True),
    ("0", True),
    ("grid-ops-2", True),
    ("a" * 32, True),
    ("a" * 33, False),
    ("", False),
    ("Alpha", False),
    ("-alpha", False),
    ("alpha_1", False),
    ("alpha.mil", False),
    ("alpha\n", False),
    ("alpha ", False),
    ("ålpha", False),
    ("al/pha", False),
]


@pytest.mark.parametrize(("station_id", "valid"), STATION_IDS)
def test_station_id_validation(tmp_path: Path, station_id: str, valid: bool) -> None:
    assert (re.fullmatch(STATION_ID_PATTERN, station_id) is not None) == valid
    if valid:
        assert create_station(tmp_path, station_id, "X", []).card().card.station_id == station_id
    else:
        with pytest.raises(ConfigError) as info:
            create_station(tmp_path, station_id, "X", [])
        assert "station id" in info.value.message
        assert "lower-case" in info.value.hint
        assert not station_exists(tmp_path)


@pytest.mark.parametrize(
    ("name", "endpoints"),
    [
        ("", ENDPOINTS),
        ("Alpha\x1b[31m", ENDPOINTS),
        ("Alpha", ["http://127.0.0.1:8471"]),
        ("Alpha", ["127.0.0.1:8471"]),
    ],
)
def test_create_refuses_bad_names_and_endpoints_before_writing(
    tmp_path: Path, name: str, endpoints: list[str]
) -> None:
    with pytest.raises(ConfigError):
        create_station(tmp_path, "alpha", name, endpoints)
    assert not station_exists(tmp_path)


def test_create_refuses_an_empty_passphrase(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="empty"):
        make(tmp_path, passphrase="")
    assert not station_exists(tmp_path)


def test_load_refuses_a_missing_station(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_station(tmp_path / "nowhere")
    assert info.value.code == "no_station"
    assert "hotline init" in info.value.hint


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660])
def test_load_refuses_key_files_other_users_can_access(tmp_path: Path, bad_mode: int) -> None:
    make(tmp_path)
    path = tmp_path / "keys" / "log.key"
    path.chmod(bad_mode)
    with pytest.raises(ConfigError) as info:
        load_station(tmp_path)
    assert info.value.code == "insecure_keys"
    assert "chmod 600" in info.value.hint
    assert str(path) in info.value.hint
    path.chmod(0o600)
    load_station(tmp_path)


def test_load_refuses_a_key_directory_other_users_can_access(tmp_path: Path) -> None:
    make(tmp_path)
    (tmp_path / "keys").chmod(0o755)
    with pytest.raises(ConfigError) as info:
        load_station(tmp_path)
    assert info.value.code == "insecure_keys"
    assert "chmod 700" in info.value.hint


def test_load_refuses_a_symlinked_key_file(tmp_path: Path) -> None:
    make(tmp_path / "s")
    keys_dir = tmp_path / "s" / "keys"
    moved = tmp_path / "elsewhere.key"
    (keys_dir / "signing.key").rename(moved)
    (keys_dir / "signing.key").symlink_to(moved)
    with pytest.raises(ConfigError) as info:
        load_station(tmp_path / "s")
    assert info.value.code == "insecure_keys"


def test_load_refuses_a_missing_key_file(tmp_path: Path) -> None:
    make(tmp_path)
    (tmp_path / "keys" / "cosign.key").unlink()
    with pytest.raises(ConfigError) as info:
        load_station(tmp_path)
    assert info.value.code == "corrupt_keys"


# --- passphrase ------------------------------------------------------------------------


def test_passphrase_round_trip_and_sealed_files(tmp_path: Path) -> None:
    created = make(tmp_path, passphrase="correct horse")
    for name in KEY_FILES:
        blob = (tmp_path / "keys" / name).read_bytes()
        assert primitives.is_passphrase_sealed(blob)
        assert mode(tmp_path / "keys" / name) == 0o600
    for secret in (created.signing_seed, created.encryption_private, created.log_seed):
        assert secret not in (tmp_path / "keys" / "signing.key").read_bytes()
    assert b"PRIVATE KEY" not in (tmp_path / "keys" / "tls.key").read_bytes()
    assert load_station(tmp_path, "correct horse") == created


def test_wrong_and_missing_passphrase_are_refused(tmp_path: Path) -> None:
    make(tmp_path, passphrase="correct horse")
    with pytest.raises(ConfigError) as wrong:
        load_station(tmp_path, "battery staple")
    assert wrong.value.code == "bad_passphrase"
    for missing in (None, ""):
        with pytest.raises(ConfigError) as info:
            load_station(tmp_path, missing)
        assert info.value.code == "passphrase_required"
        assert "HOTLINE_PASSPHRASE" in info.value.hint


def test_passphrase_for_an_unsealed_station_is_refused(tmp_path: Path) -> None:
    make(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_station(tmp_path, "surplus")
    assert info.value.code == "unexpected_passphrase"


def test_mixed_sealed_and_unsealed_key_files_are_refused(tmp_path: Path) -> None:
    make(tmp_path / "plain")
    make(tmp_path / "sealed", passphrase="pw")
    plain_log = tmp_path / "plain" / "keys" / "log.key"
    (tmp_path / "sealed" / "keys" / "log.key").write_bytes(plain_log.read_bytes())
    with pytest.raises(ConfigError) as info:
        load_station(tmp_path / "sealed", "pw")
    assert info.value.code == "corrupt_keys"


# --- corruption --------------------------------------------------------------------------


def test_truncated_seed_is_refused(tmp_path: Path) -> None:
    make(tmp_path)
    path = tmp_path / "keys" / "signing.key"
    path.write_bytes(path.read_bytes()[:31])
    with pytest.raises(ConfigError) as info:
        load_station(tmp_path)
    assert info.value.code == "corrupt_keys"


def test_empty_key_file_is_refused(tmp_path: Path) -> None:
    make(tmp_path)
    (tmp_path / "keys" / "encryption.key").write_bytes(b"")
    with pytest.raises(ConfigError) as info:
        load_station(tmp_path)
    assert info.value.code == "corrupt_keys"


def test_tls_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    make(tmp_path)
    other_key, _ = tls.make_self_signed("alpha")
    (tmp_path / "keys" / "tls.key").write_bytes(other_key)
    with pytest.raises(ConfigError) as info:
        load_station(tmp_path)
    assert info.value.code == "corrupt_keys"


def test_garbage_tls_key_is_refused(tmp_path: Path) -> None:
    make(tmp_path)
    (tmp_path / "keys" / "tls.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nxx\n")
    with pytest.raises(ConfigError) as info:
        load_station(tmp_path)
    assert info.value.code == "corrupt_keys"


@pytest.mark.parametrize(
    "damage",
    [
        lambda doc: "not json {",
        lambda doc: json.dumps([doc]),
        lambda doc: json.dumps({**doc, "extra": 1}),
        lambda doc: json.dumps({**doc, "station_id": "BAD"}),
        lambda doc: json.dumps({**doc, "endpoints": ["ftp://x"]}),
        lambda doc: json.dumps({**doc, "created_at": 5}),
        lambda doc: json.dumps({**doc, "created_at": "yesterday"}),
        lambda doc: json.dumps({**doc, "tls_cert_pem": "garbage"}),
        lambda doc: json.dumps({**doc, "tls_cert_pem": tls.make_self_signed("alpha")[1].decode()}),
        lambda doc: json.dumps({**doc, "hotline_station": 2}),
    ],
    ids=[
        "not json",
        "not an object",
        "extra field",
        "bad id",
        "bad endpoint",
        "created_at type",
        "created_at format",
        "cert garbage",
        "cert of another key",
        "format version",
    ],
)
def test_damaged_station_file_is_refused(tmp_path: Path, damage: object) -> None:
    make(tmp_path)
    path = tmp_path / "station.json"
    doc = json.loads(path.read_text())
    path.write_text(damage(doc))  # type: ignore[operator]
    with pytest.raises(ConfigError) as info:
        load_station(tmp_path)
    assert info.value.code in {"corrupt_keys", "bad_tls_cert"}
    assert info.value.hint


def test_station_file_naming_another_station_is_refused(tmp_path: Path) -> None:
    make(tmp_path)
    path = tmp_path / "station.json"
    doc = json.loads(path.read_text())
    doc["station_id"] = "bravo"  # the certificate still names alpha
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError):
        load_station(tmp_path)


# --- endpoints -------------------------------------------------------------------------


def test_update_endpoints_keeps_keys_and_fingerprint(tmp_path: Path) -> None:
    created = make(tmp_path, passphrase="pw")
    keys_before = {n: (tmp_path / "keys" / n).read_bytes() for n in KEY_FILES}
    update_endpoints(tmp_path, ["https://127.0.0.1:40123", "https://[::1]:40123"])
    loaded = load_station(tmp_path, "pw")
    assert loaded.endpoints == ("https://127.0.0.1:40123", "https://[::1]:40123")
    assert loaded.card().fingerprint() == created.card().fingerprint()
    assert loaded.card().card.endpoints == loaded.endpoints
    assert {n: (tmp_path / "keys" / n).read_bytes() for n in KEY_FILES} == keys_before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_update_endpoints_refuses_bad_urls_and_missing_station(tmp_path: Path) -> None:
    make(tmp_path / "s")
    with pytest.raises(ConfigError):
        update_endpoints(tmp_path / "s", ["http://127.0.0.1:1"])
    assert load_station(tmp_path / "s").endpoints == tuple(ENDPOINTS)
    with pytest.raises(ConfigError) as info:
        update_endpoints(tmp_path / "none", ENDPOINTS)
    assert info.value.code == "no_station"


# --- garbage on disk ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine() -> Iterator[Path]:
    """One station made once for the garbage tests; each example works on a copy."""
    root = Path(tempfile.mkdtemp())
    make(root / "station")
    yield root / "station"
    shutil.rmtree(root)


@settings(max_examples=150, deadline=None)
@given(
    target=st.sampled_from(["station.json", *(f"keys/{n}" for n in KEY_FILES)]),
    garbage=st.binary(max_size=600),
)
def test_garbage_files_give_only_config_errors(pristine: Path, target: str, garbage: bytes) -> None:
    work = Path(tempfile.mkdtemp())
    try:
        data_dir = work / "station"
        shutil.copytree(pristine, data_dir)
        (data_dir / target).write_bytes(garbage)
        try:
            loaded = load_station(data_dir)
        except ConfigError:
            return
        # only a fresh 32-byte seed is indistinguishable from a real one
        assert target in {f"keys/{n}" for n in KEY_FILES[:4]}
        assert len(garbage) == 32
        assert loaded.card().card.station_id == "alpha"
    finally:
        shutil.rmtree(work)
