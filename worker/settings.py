"""The worker's one frozen settings object, read from ``CLICKSCORE_*`` environment variables.

Every field, default and meaning mirrors the table in docs/contracts.md. Bad values stop the
process at start with one line naming every bad variable (:func:`load_settings`), never a
traceback; a ``CLICKSCORE_*`` variable that is no setting gets a "did you mean" warning
(worker/env_check.py), since a typo would otherwise be silently ignored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.kafka_connection import (
    ENV_PREFIX,
    SECURITY_FIELDS,
    KafkaConnection,
    security_problems,
)
from worker.kafka_connection import FieldError as _FieldError

__all__ = ["ENV_PREFIX", "Settings", "SettingsError", "load_kafka", "load_settings"]

TOPIC_RULE = "[a-zA-Z0-9._-], <= 249"  # Kafka's topic-name rule, as the error message says it
_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")
PLACEHOLDER = "REPLACE-ME"  # what deploy/k8s/examples/secret.yaml ships in place of each secret
MIN_PSEUDONYMIZE_KEY_CHARS = 32

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]
Store = Literal["rocksdb://", "memory://"]
EventLoop = Literal["uvloop", "asyncio"]  # worker/runtime/event_loop.py


class SettingsError(ValueError):
    """A bad setting; the message is the one line the CLI prints before exiting non-zero."""


class Settings(KafkaConnection, BaseSettings):
    """Worker settings (env prefix ``CLICKSCORE_``); see docs/contracts.md for the table.

    The Kafka connection fields and their checks come from :class:`KafkaConnection`.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", case_sensitive=False
    )

    events_topic: str = Field("clickstream.events", min_length=1, description="input events")
    dlq_topic: str = Field("clickstream.events.dlq", min_length=1, description="dead letters")
    propensity_topic: str = Field("alerts.propensity", min_length=1, description="alerts out")
    churn_topic: str = Field("alerts.churn", min_length=1, description="churn alerts out")
    outcomes_topic: str = Field(
        "alerts.outcomes", min_length=1, description="alert outcomes out (true/false per alert)"
    )
    scores_topic: str = Field("", description="every score to this topic; empty = off")
    partitions: int = Field(8, ge=1, description="partitions of events topic and changelog")
    replication_factor: int = Field(1, ge=1, description="for topics the worker creates")
    group_id: str = Field("clickscore", min_length=1, description="consumer group = Faust app id")
    store: Store = Field("rocksdb://", description="Faust table store")
    changelog_preload: bool = Field(
        True, description="rocksdb: read assigned changelog partitions before Faust does"
    )
    data_dir: Path = Field(Path("./var/worker"), description="Faust data dir (RocksDB)")
    model_dir: Path = Field(..., description="model artifact directory (required)")
    model_poll_seconds: float = Field(5.0, gt=0, description="poll period for a new manifest")
    batch_size: int = Field(256, ge=1, description="micro-batch size")
    batch_max_wait_ms: int = Field(20, ge=1, description="max wait to fill a batch")
    commit_every: int = Field(
        10_000, ge=1, description="also commit offsets inline after this many events (Faust)"
    )
    fetch_max_wait_ms: int = Field(
        1500, ge=0, le=60_000, description="longest a broker holds a fetch with no new records"
    )
    alert_cooldown_seconds: float = Field(1800.0, ge=0, description="per user and alert type")
    alert_hysteresis: float = Field(0.05, ge=0, le=1, description="re-arm below threshold - this")
    churn_sweep_interval_seconds: float = Field(60.0, gt=0, description="churn sweep period")
    churn_idle_seconds: float = Field(900.0, gt=0, description="silence before a sweep re-score")
    state_retention_hours: float = Field(
        2160.0, ge=0, description="idle users' state deleted after this (0 = kept for ever)"
    )
    max_event_bytes: int = Field(65536, ge=64, description="larger records are dead letters")
    dedup_window: int = Field(16, ge=1, description="recent event ids remembered per user")
    drift_window: int = Field(
        10000, ge=200, description="scored events in the sliding window of the drift PSI gauges"
    )
    dlq_retention_hours: float = Field(
        336.0, gt=0, description="retention of the dead-letter topic the worker creates"
    )
    poison_attempts: int = Field(
        3, ge=1, description="a record failing this many times in a row: dead letter (internal)"
    )
    stuck_after_seconds: float = Field(
        300.0, ge=10, description="/healthz 503 after lag with no commit for this long"
    )
    web_host: str = Field("0.0.0.0", description="host for /metrics, /healthz, /readyz")
    # Not 0 ("any free port"): Faust's web server refuses it with a traceback at start.
    web_port: int = Field(6066, ge=1, le=65535, description="port for /metrics, /healthz, /readyz")
    event_loop: EventLoop = Field(
        "uvloop", description="uvloop (asyncio when not installed) or asyncio"
    )
    log_level: LogLevel = Field("INFO", description="log level")
    log_format: LogFormat = Field("text", description="text or json")
    pseudonymize_key: SecretStr = Field(SecretStr(""), description="HMAC key for alert user ids")
    require_pseudonymization: bool = Field(
        False, description="refuse to start without PSEUDONYMIZE_KEY (raw ids never leave)"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "events_topic",
        "dlq_topic",
        "propensity_topic",
        "churn_topic",
        "outcomes_topic",
        "scores_topic",
    )
    @classmethod
    def _check_topic(cls, value: str) -> str:
        if value and not legal_topic(value):  # an empty scores topic means "off"
            raise ValueError(f"not a legal Kafka topic name ({TOPIC_RULE})")
        return value

    @field_validator("model_dir")
    @classmethod
    def _check_model_dir(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError("not a directory")
        if not (value / "manifest.json").is_file():
            raise ValueError("no manifest.json in it")
        return value

    @field_validator("sasl_password", "pseudonymize_key")
    @classmethod
    def _check_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        secret = value.get_secret_value() if value is not None else ""
        if PLACEHOLDER.lower() in secret.lower():
            raise ValueError(f"the {PLACEHOLDER} placeholder, not a secret")
        short = 0 < len(secret) < MIN_PSEUDONYMIZE_KEY_CHARS
        if info.field_name == "pseudonymize_key" and short:
            # An HMAC key shorter than the hash (32 bytes) can be searched for; `openssl rand
            # -hex 32` gives 64 characters.
            raise ValueError(f"shorter than {MIN_PSEUDONYMIZE_KEY_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _check_pseudonymization(self) -> Settings:
        if self.require_pseudonymization and not self.has_pseudonym_key:
            message = f"required with {env_name('require_pseudonymization')}=true"
            raise _FieldError([f"{env_name('pseudonymize_key')}=: {message}"])
        return self

    @property
    def kafka(self) -> KafkaConnection:
        """The connection part alone, for the clients (already checked: not validated again)."""
        fields = {name: getattr(self, name) for name in KafkaConnection.model_fields}
        return KafkaConnection.model_construct(**fields)

    @property
    def state_retention_ms(self) -> int:
        """Idle time (sweep clock) after which a user's state is deleted; 0 = never."""
        return int(self.state_retention_hours * 3_600_000)

    @property
    def dlq_retention_ms(self) -> int:
        """``retention.ms`` of the dead-letter topic when the worker creates it."""
        return int(self.dlq_retention_hours * 3_600_000)

    def warnings(self) -> list[str]:
        """Accepted but unsafe choices, one line each, logged at start."""
        out = []
        if self.security_protocol == "SASL_PLAINTEXT" and self.sasl_mechanism == "PLAIN":
            out.append(
                f"{env_name('security_protocol')}=SASL_PLAINTEXT with "
                f"{env_name('sasl_mechanism')}=PLAIN sends the password in clear text: "
                "use SASL_SSL, or a SCRAM mechanism at least"
            )
        hours = self.state_retention_hours
        if hours and hours * 3600 <= self.churn_idle_seconds:
            # Not refused: a huge CHURN_IDLE_SECONDS is how sweep alerts are turned off.
            out.append(
                f"{env_name('state_retention_hours')}={hours:g} is not longer than "
                f"{env_name('churn_idle_seconds')}={self.churn_idle_seconds:g} s: idle users are "
                "deleted before the churn sweep can alert on them"
            )
        return out

    @property
    def has_pseudonym_key(self) -> bool:
        """True when alerts must carry the HMAC pseudonym instead of the raw user id."""
        return bool(self.pseudonymize_key.get_secret_value())

    def loggable(self) -> dict[str, Any]:
        """Settings as a dict safe to log: secrets masked, paths as strings."""
        out: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = "**********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


def env_name(field: str) -> str:
    """The environment variable behind a settings field."""
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read and validate settings, or raise :class:`SettingsError` naming every bad variable.

    ``env`` replaces ``os.environ`` (tests); values are looked up with the ``CLICKSCORE_`` prefix.
    """
    values = _prefixed(os.environ if env is None else env)
    try:
        if env is None:
            return Settings()  # type: ignore[call-arg]  # fields come from the environment
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc, values)) from None


def load_kafka(
    bootstrap: str | None = None, env: Mapping[str, str] | None = None
) -> KafkaConnection:
    """The Kafka connection of a command-line tool: ``--bootstrap`` over the ``CLICKSCORE_*`` ones.

    Checked by the same rules as the worker's settings; a bad value raises :class:`SettingsError`
    naming the option or variable.
    """
    values = _prefixed(os.environ if env is None else env)
    if bootstrap:
        values["kafka_bootstrap"] = bootstrap
    try:
        return KafkaConnection.model_validate(values)
    except ValidationError as exc:
        line = _one_line(exc, values)
        if bootstrap:
            line = line.replace(env_name("kafka_bootstrap") + "=", "--bootstrap=", 1)
        raise SettingsError(line) from None


def legal_topic(name: str) -> bool:
    """Kafka's topic-name rule, checked at start rather than on the first produce."""
    return bool(_LEGAL_TOPIC.fullmatch(name)) and name not in (".", "..")


def default(field: str) -> Any:
    """A setting's default (the tools share the worker's topic names from here)."""
    return Settings.model_fields[field].default


def _prefixed(env: Mapping[str, str]) -> dict[str, Any]:
    # CLICKSCORE_KAFKA_BOOTSTRAP -> kafka_bootstrap (pydantic-settings' own mapping, for a dict).
    return {
        k[len(ENV_PREFIX) :].lower(): v for k, v in env.items() if k.upper().startswith(ENV_PREFIX)
    }


def _one_line(exc: ValidationError, values: Mapping[str, Any]) -> str:
    # Every problem at once, "; "-separated: fixing one and restarting to meet the next is slow.
    errors = exc.errors(include_url=False)
    lines = [_describe(err) for err in errors]
    # pydantic skips the cross-field check when a field failed: run it on the raw values, unless
    # one of its own fields is among the failures (then the raw value means nothing yet).
    failed = {str(err["loc"][0]) for err in errors if err.get("loc")}
    if failed and not failed & set(SECURITY_FIELDS):
        lines += security_problems({k: v or None for k, v in values.items()})
    return "; ".join(lines)


def _describe(err: Any) -> str:
    """One pydantic error as ``CLICKSCORE_VAR=value: what is wrong``."""
    loc = err.get("loc") or ()
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, _FieldError):
        return str(ctx_error)
    field = str(loc[0]) if loc else ""
    value = err.get("input")
    shown = "" if value is None or isinstance(value, dict) else _mask(field, value)
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "missing":
        message = "required, not set"
    if not field:
        return message
    return f"{env_name(field)}={shown}: {_friendly(message)}"


def _mask(field: str, value: Any) -> str:
    if field in ("sasl_password", "pseudonymize_key"):
        return "**********"
    return str(value)


def _friendly(message: str) -> str:
    # pydantic says "Input should be greater than or equal to 1"; the docs say ">= 1".
    replacements = {
        "Input should be greater than or equal to ": "must be >= ",
        "Input should be less than or equal to ": "must be <= ",
        "Input should be greater than ": "must be > ",
        "Input should be less than ": "must be < ",
        "Input should be ": "must be ",
    }
    for old, new in replacements.items():
        if message.startswith(old):
            return new + message[len(old) :]
    return message


def settings_help() -> str:
    """One line per setting: variable, default and meaning (for ``python -m worker run --help``)."""
    lines = []
    for name, info in Settings.model_fields.items():
        default = "(required)" if info.is_required() else repr(_plain(info.default))
        lines.append(f"  {env_name(name):<44} default {default:<22} {info.description or ''}")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    return value
