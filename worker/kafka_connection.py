"""Where and how to reach Kafka, validated once, in the form each client library wants.

The worker's :class:`worker.settings.Settings` extends :class:`KafkaConnection` (so the variables
keep their names, ``CLICKSCORE_KAFKA_BOOTSTRAP`` ...) and hands it on as ``settings.kafka``; the
command-line tools read one with :func:`worker.settings.load_kafka`; the bench and the tests build
one from a bootstrap address. Every Kafka client in the project is configured from one:
:meth:`~KafkaConnection.librdkafka` for confluent-kafka (replay, the alerts viewer, topic admin,
the changelog preload, bench, tests), :meth:`~KafkaConnection.faust_broker` and
:meth:`~KafkaConnection.faust_credentials` for the Faust app, which hands them to aiokafka
(:meth:`~KafkaConnection.ssl_context` is the TLS part of that aiokafka form).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ENV_PREFIX: Final = "CLICKSCORE_"
DEFAULT_BOOTSTRAP: Final = "127.0.0.1:9092"

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


SECURITY_FIELDS: Final = (
    "security_protocol",
    "sasl_username",
    "sasl_password",
    "ssl_cert_file",
    "ssl_key_file",
)


class FieldError(ValueError):
    """Cross-field failures, each naming its variable (pydantic wraps the exception)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))


def security_problems(values: Mapping[str, Any]) -> list[str]:
    """Every way the security settings fail together, each as ``CLICKSCORE_VAR=: why``.

    ``values`` maps field names to values (the raw strings, too: the settings' error path runs
    this when another field failed and pydantic skipped the model check).
    """
    problems: list[str] = []
    protocol = str(values.get("security_protocol") or "PLAINTEXT")
    if protocol.startswith("SASL"):
        for field in ("sasl_username", "sasl_password"):
            if not values.get(field):
                problems.append(f"{ENV_PREFIX}{field.upper()}=: required with {protocol}")
    if (values.get("ssl_cert_file") is None) != (values.get("ssl_key_file") is None):
        problems.append(f"{ENV_PREFIX}SSL_KEY_FILE=: SSL_CERT_FILE and SSL_KEY_FILE go together")
    return problems


class KafkaConnection(BaseModel):
    """Bootstrap servers, security protocol, SASL and TLS files: one validated, frozen object."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(
        default=DEFAULT_BOOTSTRAP, description="bootstrap servers, host:port,..."
    )
    security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="Kafka security protocol"
    )
    sasl_mechanism: SaslMechanism = Field(default="SCRAM-SHA-512", description="SASL mechanism")
    sasl_username: str | None = Field(default=None, description="required with SASL_*")
    sasl_password: SecretStr | None = Field(
        default=None, description="required with SASL_* (secret)"
    )
    ssl_ca_file: Path | None = Field(default=None, description="CA bundle (PEM)")
    ssl_cert_file: Path | None = Field(default=None, description="client certificate (PEM)")
    ssl_key_file: Path | None = Field(default=None, description="client key (PEM)")

    @field_validator("kafka_bootstrap")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server!r} is not host:port")
        return value

    @field_validator("ssl_ca_file", "ssl_cert_file", "ssl_key_file")
    @classmethod
    def _check_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("file not found")
        return value

    @model_validator(mode="after")
    def _check_security(self) -> KafkaConnection:
        fields = {name: getattr(self, name) for name in SECURITY_FIELDS}
        problems = security_problems({**fields, "sasl_password": self._password()})
        if problems:
            raise FieldError(problems)
        return self

    def librdkafka(self) -> dict[str, str]:
        """confluent-kafka (librdkafka) settings: ``bootstrap.servers``, security, SASL, TLS."""
        config = {
            "bootstrap.servers": self.kafka_bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL"):
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username or ""
            config["sasl.password"] = self._password()
        for path, key in (
            (self.ssl_ca_file, "ssl.ca.location"),
            (self.ssl_cert_file, "ssl.certificate.location"),
            (self.ssl_key_file, "ssl.key.location"),
        ):
            if path is not None:
                config[key] = str(path)
        return config

    def faust_broker(self) -> list[str]:
        """The bootstrap list as Faust wants it (``kafka://host:port`` each)."""
        return [f"kafka://{s.strip()}" for s in self.kafka_bootstrap.split(",")]

    def faust_credentials(self) -> Any:
        """Faust's broker credentials (None for PLAINTEXT); Faust hands them to aiokafka."""
        import faust  # only the worker's runtime pays for importing Faust

        proto = self.security_protocol
        if proto == "PLAINTEXT":
            return None
        context = self.ssl_context() if proto in ("SSL", "SASL_SSL") else None
        if proto == "SSL":
            return faust.SSLCredentials(context)
        return faust.SASLCredentials(
            username=self.sasl_username,
            password=self._password(),
            mechanism=self.sasl_mechanism,
            ssl_context=context,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS context trusting SSL_CA_FILE (else the system CAs), with the client pair if set."""
        context = ssl.create_default_context(
            cafile=str(self.ssl_ca_file) if self.ssl_ca_file else None
        )
        if self.ssl_cert_file and self.ssl_key_file:
            context.load_cert_chain(str(self.ssl_cert_file), str(self.ssl_key_file))
        return context

    def _password(self) -> str:
        return self.sasl_password.get_secret_value() if self.sasl_password else ""


def local(bootstrap: str) -> KafkaConnection:
    """A PLAINTEXT connection to ``bootstrap`` (the local broker of the bench and the tests)."""
    return KafkaConnection(kafka_bootstrap=bootstrap)
