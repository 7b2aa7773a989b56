"""The one frozen settings object.

Owns every tunable number and every safety bound on external input. Values come, in
order of precedence, from explicit arguments, ``HOTLINE_*`` environment variables, the
station's ``hotline.toml`` in its data directory, then the defaults below. No other
module reads ``os.environ``; they receive a ``Settings``.

Every field is documented in docs/operations.md, and a test checks that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_NAME = "hotline.toml"


class LadderStep(BaseModel):
    """A step of the standing channels' escalation ladder (``escalation_ladder``):
    ``after_deadlines`` acknowledgement deadlines past the deadline (0: at the deadline,
    1: one more deadline later), the role ``role`` is alarmed, on both sides when
    ``both_sides``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    after_deadlines: float = Field(ge=0, le=100)
    role: str = Field(pattern="^(watch_officer|senior_watch_officer|principal)$")
    both_sides: bool = True


class Settings(BaseSettings):
    """Station settings. Frozen: build a new one to change anything."""

    model_config = SettingsConfigDict(
        env_prefix="HOTLINE_", frozen=True, extra="forbid", toml_file=None
    )

    data_dir: Path = Field(
        default=Path("hotline-data"), description="Directory holding the station's keys and store."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store; default is SQLite file store.db in data_dir. "
        "PostgreSQL: postgresql+psycopg://user@host/db",
    )
    standby: bool = Field(
        default=False,
        description="Active/standby on PostgreSQL: when another process of this station is "
        "active, wait as its standby (503 naming the active, /health 503) and take over when "
        "it is gone. False: refuse to start while another process is active. Not on SQLite.",
    )
    process_name: str | None = Field(
        default=None,
        max_length=200,
        description="This process's name in the active/standby pair, recorded on promotion "
        "and named by the standby's 503 answers and /health (default: the host name).",
    )
    takeover_poll_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="Active/standby: how often a standby tries the election lock and the "
        "active checks it still holds it.",
    )
    leader_lease_s: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="Active/standby: a process that stops answering (paused, hung) loses the "
        "election lock, and its open writer transaction, after this long; more than "
        "takeover_poll_s.",
    )
    passphrase: SecretStr | None = Field(
        default=None, description="Passphrase that unseals the station's key files, if sealed."
    )
    api_host: str = Field(default="127.0.0.1", description="Operator API listen address.")
    api_port: int = Field(default=8470, ge=0, le=65535, description="Operator API port (0: any).")
    peer_host: str = Field(default="127.0.0.1", description="Peer endpoint listen address.")
    peer_port: int = Field(default=8471, ge=0, le=65535, description="Peer endpoint port (0: any).")
    max_envelope_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest envelope accepted or sent, in bytes."
    )
    max_batch_envelopes: int = Field(
        default=256, ge=1, le=10_000, description="Most envelopes delivered in one peer request."
    )
    max_request_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest peer or API request body, in bytes."
    )
    max_clock_skew_s: float = Field(
        default=300.0, gt=0, description="Envelopes dated further in the future are refused."
    )
    max_sequence_ahead: int = Field(
        default=4096,
        ge=1,
        le=1_000_000,
        description="Most sequence numbers a peer may skip ahead of the highest contiguous "
        "one received from it; further ahead is refused (seq_window).",
    )
    max_text_chars: int = Field(
        default=20_000, ge=1, description="Longest message text accepted from an operator."
    )
    link_test_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between scheduled link tests on each line; a peer that stops "
        "answering is DOWN within two of these.",
    )
    link_degraded_rtt_ms: float = Field(
        default=2000.0, gt=0, description="Round trip above which a line is DEGRADED."
    )
    link_down_after_failures: int = Field(
        default=3, ge=1, description="Consecutive failed link tests or deliveries before DOWN."
    )
    link_history_size: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="Link tests kept per peer for the console's health history (oldest dropped).",
    )
    peer_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Timeout of one peer request (a link test waits less when the interval "
        "asks for it; a delivery at most this plus one interval in all).",
    )
    paths: list[Literal["https", "nats"]] = Field(
        default=["https"],
        min_length=1,
        max_length=4,
        description="The paths this station sends on, most preferred first: https (the "
        "peer's endpoint, mutual TLS) and nats (the relay at relay_url). Each path is "
        "link-tested on its own; pending envelopes go on the next UP path when one fails.",
    )
    flash_every_path: list[str] = Field(
        default=["*"],
        max_length=64,
        description="Channels whose FLASH messages go on every path that is not DOWN at "
        "once, not only on the preferred one (* for every channel; [] for none). The peer "
        "keeps one copy.",
    )
    relay_url: str | None = Field(
        default=None,
        description="URL of the NATS relay (JetStream) for the nats path, e.g. "
        "tls://relay.example:4222 (nats:// only on a trusted network).",
    )
    relay_credentials_file: Path | None = Field(
        default=None,
        description="File (mode 0600) holding this station's relay credentials as one line "
        "USER:PASSWORD; none: connect without credentials.",
    )
    relay_prefix: str = Field(
        default="hotline",
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="First subject token of every relay subject (and of stream names): "
        "stations sharing a relay must use the same one.",
    )
    relay_ack_wait_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds the relay waits for this station to finish a frame before it "
        "delivers the frame again (after a crash); a second delivery changes nothing.",
    )
    retry_base_s: float = Field(default=0.5, gt=0, description="First delivery retry delay.")
    retry_max_s: float = Field(default=30.0, gt=0, description="Longest delivery retry delay.")
    ack_deadline_flash_s: float = Field(default=600.0, gt=0, description="FLASH ack deadline.")
    ack_deadline_immediate_s: float = Field(
        default=1800.0, gt=0, description="IMMEDIATE ack deadline."
    )
    ack_deadline_priority_s: float = Field(
        default=10800.0, gt=0, description="PRIORITY ack deadline."
    )
    ack_deadline_routine_s: float = Field(
        default=21600.0, gt=0, description="ROUTINE ack deadline."
    )
    escalation_ladder: list[LadderStep] = Field(
        default=[
            LadderStep(after_deadlines=0, role="senior_watch_officer"),
            LadderStep(after_deadlines=1, role="principal"),
        ],
        max_length=8,
        description="The escalation ladder of the standing channels (an agreed channel has "
        "its own): steps of {after_deadlines, role, both_sides}; the default alarms the "
        "senior watch officer at the deadline and the principal one deadline later, on "
        "both sides.",
    )
    escalation_check_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often the station looks for escalation steps that are due.",
    )
    group_commit_max_batch: int = Field(
        default=512, ge=1, description="Most appends written in one database transaction."
    )
    sqlite_synchronous: str = Field(
        default="FULL",
        pattern="^(FULL|NORMAL|EXTRA)$",
        description="SQLite synchronous pragma for the store (FULL: fsync every commit).",
    )
    geometry_max_vertices: int = Field(
        default=10_000, ge=4, description="Most vertices in one notified geometry."
    )
    geometry_max_rings: int = Field(
        default=64, ge=1, description="Most rings (outer ring and holes) in one notified polygon."
    )
    notice_max_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest deconfliction notice (its data as compact JSON), in bytes.",
    )
    deconfliction_max_delta: int = Field(
        default=2048, ge=16, description="Sites added since the last index rebuild before the next."
    )
    import_max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Largest site import file, in bytes."
    )
    bundle_max_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=8192,
        description="Largest bundle file exported or imported (hand-carried path), in bytes; "
        "checked before anything in the file is read.",
    )
    bundle_max_envelopes: int = Field(
        default=5000,
        ge=1,
        le=10_000,
        description="Most envelopes (and most receipts) one bundle file carries.",
    )
    reconfirm_default_days: int = Field(
        default=90, ge=1, le=3650, description="Reconfirmation period of imported sites, in days."
    )
    api_max_json_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Largest operator API JSON body that FastAPI parses on the event loop "
        "(sends, acknowledgements, peers), in bytes; notices (notice_max_bytes) and imports "
        "(import_max_bytes) are read raw and parsed in a worker thread.",
    )
    api_rate_per_s: float = Field(
        default=200.0,
        gt=0,
        description="Operator API requests per second per client address and token (burst 2x).",
    )
    api_auth_failures_per_s: float = Field(
        default=0.5,
        gt=0,
        description="Requests with a missing or wrong API token answered per second per client "
        "address (burst 10); beyond that, 429 until the client slows down.",
    )
    idempotency_ttl_s: float = Field(
        default=86_400.0,
        ge=60,
        le=30 * 86_400,
        description="How long the result of a send with an Idempotency-Key is kept: a retry "
        "within this time returns the first result instead of sending again.",
    )
    standing_channels: list[str] = Field(
        default=["working", "deconfliction"],
        description="The line's own channels: working level, between this station and each "
        "peer, with no proposal needed (every other channel is proposed and accepted).",
    )
    two_person_channels: list[str] = Field(
        default=[],
        description="Standing channels on which a second officer must approve every message "
        "before it leaves (the two-person rule; an agreed channel says so in its own terms). "
        "A send there records an approval request and answers 202.",
    )
    approval_check_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often pending approval requests are checked against their deadline "
        "(one past it is recorded as expired and alarmed).",
    )
    channel_levels: list[str] = Field(
        default=["working", "chiefs_of_staff", "ministers"],
        description="The levels a channel may have, lowest first.",
    )
    console_enabled: bool = Field(
        default=True,
        description="Whether the operator API also serves the web console (/, /login, /wall).",
    )
    console_idle_lock_s: float = Field(
        default=900,
        ge=0,
        le=86_400,
        description="Seconds without input after which the console asks for the password "
        "again (0: never).",
    )
    station_token_enabled: bool = Field(
        default=True,
        description="Whether the station's bootstrap token (the api-token file) is accepted "
        "by the operator API (as the user 'station', every role). Turn it off once the "
        "officers have accounts: every request must then name an officer.",
    )
    officer_token_ttl_s: float = Field(
        default=90 * 86_400,
        gt=0,
        le=366 * 86_400,
        description="How long an officer's API token (hotline login, hotline officer token "
        "issue) is valid unless a shorter expiry is asked for.",
    )
    session_ttl_s: float = Field(
        default=12 * 3600,
        gt=0,
        le=7 * 86_400,
        description="How long a browser session lasts at most after login.",
    )
    session_reauth_s: float = Field(
        default=300,
        ge=0,
        le=86_400,
        description="Seconds after a login during which a browser session may approve, "
        "suspend, or change peers and accounts; later the password is asked again "
        "(0: never asked again).",
    )
    session_idle_s: float = Field(
        default=30 * 60,
        gt=0,
        le=86_400,
        description="A browser session unused for this long ends (idle timeout).",
    )
    login_failures_before_backoff: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Wrong passwords (or TOTP codes) an account may see in a row before "
        "each further login to it waits (doubling, up to login_backoff_max_s).",
    )
    login_backoff_max_s: float = Field(
        default=900,
        gt=0,
        le=86_400,
        description="The longest an account's login is held back after wrong passwords.",
    )
    suspended_allow: list[Literal["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]] = Field(
        default=["FLASH"],
        max_length=4,
        description="What may still be sent on a standing channel while it (or the line) is "
        "suspended, by precedence; an agreed channel has its own list in its terms.",
    )
    dissemination_deadline_s: float = Field(
        default=1800.0,
        gt=0,
        le=7 * 86_400,
        description="A peer's notice involved in an open conflict must be recorded as passed "
        "on (hotline disseminate) within this time of the conflict opening (or of its "
        "arrival, if later); after it, the alarm not_disseminated.",
    )
    witnesses: list[str] = Field(
        default=[],
        description="Third-party witnesses (arbiters) that cosign this station's checkpoints, "
        'each "URL VKEY" (from hotline witness init), e.g. '
        '"http://127.0.0.1:8480 hotline-arbiter+1234abcd+AQ...".',
    )

    @field_validator("witnesses")
    @classmethod
    def _check_witnesses(cls, value: list[str]) -> list[str]:
        from hotline.errors import HotlineError
        from hotline.ledger.cosignature import CosignatureVerifier

        for item in value:
            url, _, vkey = item.strip().partition(" ")
            if not url.startswith(("http://", "https://")) or len(url) < 9:
                raise ValueError(f"witness {item!r}: the first part must be an http(s) URL")
            try:
                CosignatureVerifier.from_vkey(vkey.strip())
            except HotlineError as exc:
                raise ValueError(f"witness {item!r}: the second part must be its vkey") from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _StationTomlSource(settings_cls, init_settings))

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'store.db').resolve()}"


class _StationTomlSource(TomlConfigSettingsSource):
    """Reads ``hotline.toml`` from the data directory chosen by arguments or environment."""

    def __init__(self, settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource) -> None:
        import os

        chosen: Any = init().get("data_dir") or os.environ.get("HOTLINE_DATA_DIR")
        path = Path(chosen or "hotline-data") / CONFIG_FILE_NAME
        super().__init__(settings_cls, toml_file=path if path.is_file() else [])
