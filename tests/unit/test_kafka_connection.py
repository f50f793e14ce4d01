"""The one Kafka connection: checked once for worker and tools, in each client library's form."""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from worker.kafka_connection import KafkaConnection, local
from worker.settings import Settings, SettingsError, load_kafka, load_settings
from worker.tools.kafka_config import check_topic, producer_config

SASL = {
    "CLICKSCORE_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "CLICKSCORE_SASL_USERNAME": "alice",
    "CLICKSCORE_SASL_PASSWORD": "secret",
}


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"CLICKSCORE_KAFKA_BOOTSTRAP": "host-without-port"}, "CLICKSCORE_KAFKA_BOOTSTRAP"),
        ({"CLICKSCORE_KAFKA_BOOTSTRAP": "h:99999"}, "CLICKSCORE_KAFKA_BOOTSTRAP"),
        ({"CLICKSCORE_SECURITY_PROTOCOL": "TLS"}, "CLICKSCORE_SECURITY_PROTOCOL"),
        ({"CLICKSCORE_SECURITY_PROTOCOL": "SASL_SSL"}, "CLICKSCORE_SASL_USERNAME"),
        ({"CLICKSCORE_SSL_CA_FILE": "/nonexistent/ca.pem"}, "CLICKSCORE_SSL_CA_FILE"),
    ],
)
def test_tool_and_worker_refuse_the_same_bad_value_with_the_same_line(
    env: dict[str, str], names: str, tmp_path: Path
) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(SettingsError, match=f"^{names}=") as tool:
        load_kafka(None, env)
    with pytest.raises(SettingsError) as worker:
        load_settings({**env, "CLICKSCORE_MODEL_DIR": str(tmp_path)})
    assert str(tool.value) == str(worker.value)


def test_bootstrap_option_wins_and_is_named_when_bad() -> None:
    env = {"CLICKSCORE_KAFKA_BOOTSTRAP": "a:1"}
    assert load_kafka("b:2", env).kafka_bootstrap == "b:2"
    assert load_kafka(None, env).kafka_bootstrap == "a:1"
    with pytest.raises(SettingsError, match=r"^--bootstrap=nonsense: "):
        load_kafka("nonsense", env)


def test_defaults_live_in_one_place() -> None:
    assert load_kafka(None, {}) == KafkaConnection()
    for name, field in KafkaConnection.model_fields.items():
        assert Settings.model_fields[name].default == field.default, name


def test_librdkafka_form_carries_sasl_and_tls(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    config = load_kafka(None, {**SASL, "CLICKSCORE_SSL_CA_FILE": str(ca)}).librdkafka()
    assert config == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice",
        "sasl.password": "secret",
        "ssl.ca.location": str(ca),
    }
    assert local("h:1").librdkafka() == {
        "bootstrap.servers": "h:1",
        "security.protocol": "PLAINTEXT",
    }


def test_faust_form() -> None:
    plain = local("a:1,b:2")
    assert plain.faust_broker() == ["kafka://a:1", "kafka://b:2"]
    assert plain.faust_credentials() is None
    creds = load_kafka(None, SASL).faust_credentials()
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password, creds.ssl_context) == ("alice", "secret", None)


def test_settings_hand_on_their_connection(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    settings = load_settings({**SASL, "CLICKSCORE_MODEL_DIR": str(tmp_path)})
    assert settings.kafka == load_kafka(None, SASL)
    assert type(settings.kafka) is KafkaConnection


def test_producer_partitions_keys_like_java_and_aiokafka() -> None:
    assert producer_config(local("127.0.0.1:9092"))["partitioner"] == "murmur2_random"


@pytest.mark.parametrize("topic", ["no spaces", "..", "a" * 250, "ümlaut"])
def test_worker_and_tools_refuse_the_same_illegal_topic_names(topic: str, tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(SettingsError, match=r"CLICKSCORE_DLQ_TOPIC=.*not a legal Kafka topic name"):
        load_settings({"CLICKSCORE_DLQ_TOPIC": topic, "CLICKSCORE_MODEL_DIR": str(tmp_path)})
    with pytest.raises(SettingsError, match=r"--topic=.*not a legal Kafka topic name"):
        check_topic(topic, "--topic")
    assert check_topic("clickstream.events_v-2", "--topic") == "clickstream.events_v-2"
