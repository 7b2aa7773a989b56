"""What the bench scripts share: the machine they ran on, percentiles, a fresh identity.

Imported by the scripts beside it (``python bench/x.py`` puts this folder on the path);
never by the package or the tests.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hotline.crypto import primitives, tls
from hotline.crypto.keys import StationIdentity


def machine() -> dict[str, Any]:
    """Cores, CPU model, versions and the load when the bench started."""
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "loadavg_1m_at_start": os.getloadavg()[0],
    }


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``."""
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def identity(station_id: str) -> StationIdentity:
    """A fresh station identity with new keys (nothing written to disk)."""
    key_pem, cert_pem = tls.make_self_signed(station_id)
    return StationIdentity(
        station_id=station_id,
        display_name=station_id.capitalize(),
        signing_seed=primitives.new_signing_key(),
        encryption_private=primitives.new_encryption_key(),
        log_seed=primitives.new_signing_key(),
        cosign_seed=primitives.new_signing_key(),
        tls_key_pem=key_pem,
        tls_cert_pem=cert_pem,
        endpoints=("https://127.0.0.1:8471",),
        created_at="2026-01-01T00:00:00Z",
    )


@contextlib.contextmanager
def pg_databases(admin_url: str, tag: str, names: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database for each of ``names`` (``hotline_TAG_NAME_xxx``) on the
    server of ``admin_url``, their URLs by name; each dropped at the end."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    suffix = uuid.uuid4().hex[:10]
    dbs = {n: f"hotline_{tag}_{n}_{suffix}" for n in names}
    with admin.connect() as conn:
        for db in dbs.values():
            conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
    try:
        yield {n: admin_url.rsplit("/", 1)[0] + f"/{db}" for n, db in dbs.items()}
    finally:
        with admin.connect() as conn:
            for db in dbs.values():
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()
