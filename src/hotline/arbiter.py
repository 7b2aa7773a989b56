"""A third-party witness (an arbiter both sides accept), speaking C2SP tlog-witness.

Owns: the arbiter's directory (its cosigner seed ``witness.seed``, 0600; its name and
the logs it witnesses in ``witness.json``; its SQLite store ``witness.db``, whose tables
and SQL are :mod:`hotline.store.arbiterdb`), the per-origin state (size, root, signed
note) and the fork evidence in that store, and a small FastAPI app with
``POST /add-checkpoint``. The decision itself is
:func:`hotline.ledger.witness.add_checkpoint`; here only the edge: read the state, decide,
persist, all in ONE ``BEGIN IMMEDIATE`` transaction per request (two requests for one
origin cannot roll the witness back), and map refusals to the spec's status codes:
400 bad request, 403 bad or missing log signature, 404 unknown origin, 409 another old
size (``text/x.tlog.size``), 413 body too large, 422 bad proof or fork.

A fork (two roots for one size, or a proof that verifies the new root but not the
cosigned one: both need the log's signatures, so they are attributable) is kept as
evidence (both signed notes and the proof) and logged at CRITICAL. A consistency proof
that simply does not verify is refused (422) and logged, not kept: over plain HTTP the
proof is not signed, so anyone who saw a checkpoint could send a bad one.

Plain HTTP is fine for the arbiter: every request is authenticated by the log's
signature and every answer by the arbiter's cosignature. Must not touch: a station's
store or keys; the arbiter knows stations only by their log keys.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from hotline.crypto.card import parse_card
from hotline.errors import ConfigError, ForkError, HotlineError, NoteError, ProofError
from hotline.ledger import witness as wit
from hotline.ledger.checkpoint import CheckpointFork
from hotline.ledger.cosignature import CosignatureVerifier, Cosigner
from hotline.ledger.note import Ed25519Verifier, valid_key_name
from hotline.store import arbiterdb

log = logging.getLogger(__name__)

SEED_FILE = "witness.seed"
CONFIG_FILE = "witness.json"
DB_FILE = "witness.db"
MAX_REQUEST_BYTES = 64 * 1024  #: 63 proof lines and a note with a few signatures fit

# --- the directory ----------------------------------------------------------------------


def init(directory: Path, name: str) -> CosignatureVerifier:
    """Create an arbiter in ``directory``: a new cosigner seed (0600) and its config."""
    if not valid_key_name(name):
        raise ConfigError(f"{name!r} is not a valid key name", hint="e.g. hotline-arbiter")
    directory.mkdir(parents=True, exist_ok=True)
    seed_path = directory / SEED_FILE
    if seed_path.exists():
        raise ConfigError(f"{seed_path} exists", hint="an arbiter is already set up here")
    seed = os.urandom(32)
    fd = os.open(seed_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(seed)
    _write_config(directory, {"name": name, "logs": {}})
    return Cosigner(name, seed).verifier


def trust(directory: Path, card_text: str) -> str:
    """Witness the log of the station whose card this is; returns the log's origin."""
    from hotline.service.witnessing import origin_of

    card = parse_card(card_text).card
    origin = origin_of(card.station_id)
    config = _read_config(directory)
    config["logs"][origin] = Ed25519Verifier(origin, card.log_key).vkey
    _write_config(directory, config)
    return origin


def _read_config(directory: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads((directory / CONFIG_FILE).read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"no arbiter in {directory}", hint=f"hotline witness init --dir {directory}"
        ) from None
    except ValueError:
        raise ConfigError(f"{directory / CONFIG_FILE} is not JSON") from None
    return doc


def _write_config(directory: Path, doc: dict[str, Any]) -> None:
    tmp = directory / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    tmp.replace(directory / CONFIG_FILE)


@dataclass(frozen=True, slots=True)
class Arbiter:
    cosigner: Cosigner
    logs: dict[str, Ed25519Verifier]  #: origin -> the log's key
    engine: Engine
    clock: Callable[[], float] = time.time


def load(directory: Path, clock: Callable[[], float] = time.time) -> Arbiter:
    """Open the arbiter in ``directory`` (creating its tables if new)."""
    config = _read_config(directory)
    seed_path = directory / SEED_FILE
    if not seed_path.is_file():
        raise ConfigError(f"{seed_path} is missing", hint="restore it, or init a new arbiter")
    if seed_path.stat().st_mode & 0o077:
        raise ConfigError(f"{seed_path} is readable by others", hint=f"chmod 600 {seed_path}")
    cosigner = Cosigner(str(config["name"]), seed_path.read_bytes())
    logs = {}
    for origin, vkey in dict(config.get("logs", {})).items():
        key = Ed25519Verifier.from_vkey(str(vkey))
        if key.name != origin:
            raise ConfigError(f"the key for {origin} is named {key.name}")
        logs[str(origin)] = key
    return Arbiter(
        cosigner, logs, arbiterdb.open_store(f"sqlite:///{(directory / DB_FILE).resolve()}"), clock
    )


# --- the decision, at the edge ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


def _origin(note: str) -> str:
    return note.split("\n", 1)[0]


def handle(arbiter: Arbiter, body: bytes) -> Answer:
    """One add-checkpoint request, decided and persisted in one transaction."""
    try:
        req = wit.parse_add_checkpoint(body)
    except HotlineError as exc:
        return Answer(400, f"{exc.message}\n".encode())
    origin = _origin(req.note)
    key = arbiter.logs.get(origin)
    if key is None:
        return Answer(404, b"unknown log origin\n")
    with arbiter.engine.begin() as conn:
        held = arbiterdb.state(conn, origin)
        state = None if held is None else wit.WitnessState(*held)
        now = max(1, int(arbiter.clock()))
        try:
            new, cosig = wit.add_checkpoint(state, req, key, arbiter.cosigner, now)
        except wit.WitnessConflict as exc:
            return Answer(409, exc.body(), "text/x.tlog.size")
        except wit.WitnessBadRequest as exc:
            return Answer(400, f"{exc.message}\n".encode())
        except NoteError as exc:
            return Answer(403, f"{exc.message}\n".encode())
        except CheckpointFork as exc:
            log.critical("evidence of a fork in %s: %s", origin, exc.message)
            arbiterdb.keep_evidence(
                conn, origin, exc.message, exc.first, exc.second, list(exc.proof), now
            )
            return Answer(422, f"{exc.message}\n".encode())
        except (ProofError, ForkError) as exc:
            log.warning("checkpoint for %s refused: %s", origin, exc.message)
            return Answer(422, f"{exc.message}\n".encode())
        except HotlineError as exc:
            return Answer(403, f"{exc.message}\n".encode())
        arbiterdb.put_state(conn, origin, new.size, new.root, new.note, now, new=held is None)
    return Answer(200, cosig.line().encode("utf-8"))  # one line, ending in "\n"


def create_app(arbiter: Arbiter, max_request_bytes: int = MAX_REQUEST_BYTES) -> FastAPI:
    """The arbiter's HTTP app: ``POST /add-checkpoint`` (C2SP tlog-witness)."""
    app = FastAPI(title="hotline arbiter", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_request_bytes):
            return Response(b"request too large\n", 413, media_type="text/plain")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_request_bytes:
                return Response(b"request too large\n", 413, media_type="text/plain")
        answer = await run_in_threadpool(handle, arbiter, bytes(body))
        return Response(answer.body, answer.status, headers={"content-type": answer.content_type})

    return app
