"""Settings: defaults per docs/contracts.md, one clear line per bad value, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.env_check import unknown_variables
from worker.settings import (
    Settings,
    SettingsError,
    load_settings,
    settings_help,
)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    (tmp_path / "manifest.json").write_text("{}")
    return tmp_path


def _env(model_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "CLICKSCORE_MODEL_DIR": str(model_dir),
        **{f"CLICKSCORE_{k}": v for k, v in extra.items()},
    }


def test_defaults_follow_the_contract(model_dir: Path) -> None:
    s = load_settings(_env(model_dir))
    assert s.kafka_bootstrap == "127.0.0.1:9092" and s.security_protocol == "PLAINTEXT"
    assert (s.events_topic, s.dlq_topic) == ("clickstream.events", "clickstream.events.dlq")
    assert (s.propensity_topic, s.churn_topic, s.scores_topic) == (
        "alerts.propensity",
        "alerts.churn",
        "",
    )
    assert (s.partitions, s.replication_factor, s.group_id) == (8, 1, "clickscore")
    assert (s.batch_size, s.batch_max_wait_ms, s.dedup_window) == (256, 20, 16)
    assert (s.alert_cooldown_seconds, s.alert_hysteresis) == (1800, 0.05)
    assert (s.churn_sweep_interval_seconds, s.churn_idle_seconds) == (60, 900)
    assert (s.max_event_bytes, s.web_port, s.log_format, s.store) == (
        65536,
        6066,
        "text",
        "rocksdb://",
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"BATCH_SIZE": "0"}, "CLICKSCORE_BATCH_SIZE=0: must be >= 1"),
        ({"SECURITY_PROTOCOL": "TLS"}, "CLICKSCORE_SECURITY_PROTOCOL=TLS: must be 'PLAINTEXT'"),
        ({"LOG_FORMAT": "xml"}, "CLICKSCORE_LOG_FORMAT=xml:"),
        (
            {"KAFKA_BOOTSTRAP": "nohost"},
            "CLICKSCORE_KAFKA_BOOTSTRAP=nohost: 'nohost' is not host:port",
        ),
        ({"SSL_CA_FILE": "/no/such.pem"}, "CLICKSCORE_SSL_CA_FILE=/no/such.pem: file not found"),
        ({"SECURITY_PROTOCOL": "SASL_SSL"}, "CLICKSCORE_SASL_USERNAME=: required with SASL_SSL"),
        (
            {"SECURITY_PROTOCOL": "SASL_PLAINTEXT", "SASL_USERNAME": "me"},
            "CLICKSCORE_SASL_PASSWORD=: required with SASL_PLAINTEXT",
        ),
        ({"PARTITIONS": "many"}, "CLICKSCORE_PARTITIONS=many:"),
        ({"WEB_PORT": "0"}, "CLICKSCORE_WEB_PORT=0: must be >= 1"),  # Faust refuses port 0
    ],
)
def test_bad_value_gives_one_line_naming_the_variable(
    model_dir: Path, extra: dict[str, str], expected: str
) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(_env(model_dir, **extra))
    message = str(err.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_model_dir_must_exist_and_hold_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^CLICKSCORE_MODEL_DIR=: required, not set$"):
        load_settings({})
    with pytest.raises(SettingsError, match="CLICKSCORE_MODEL_DIR=/nope: not a directory"):
        load_settings({"CLICKSCORE_MODEL_DIR": "/nope"})
    with pytest.raises(SettingsError, match=r"no manifest\.json"):
        load_settings({"CLICKSCORE_MODEL_DIR": str(tmp_path)})


def test_secrets_never_in_repr_logs_or_errors(model_dir: Path) -> None:
    env = _env(
        model_dir,
        SECURITY_PROTOCOL="SASL_PLAINTEXT",
        SASL_USERNAME="me",
        SASL_PASSWORD="hunter2-pw",
        PSEUDONYMIZE_KEY="k3y-secret-" + "9" * 32,
    )
    s = load_settings(env)
    shown = repr(s) + str(s) + str(s.loggable())
    assert "hunter2-pw" not in shown and "k3y-secret" not in shown
    assert s.has_pseudonym_key
    with pytest.raises(SettingsError) as err:
        load_settings({**env, "CLICKSCORE_BATCH_SIZE": "0"})
    assert "hunter2-pw" not in str(err.value)


def test_settings_are_frozen(model_dir: Path) -> None:
    s = load_settings(_env(model_dir))
    with pytest.raises(ValueError):
        s.batch_size = 3  # type: ignore[misc]


def test_help_lists_every_setting_with_its_variable() -> None:
    text = settings_help()
    for name in Settings.model_fields:
        assert f"CLICKSCORE_{name.upper()} " in text


def test_every_bad_value_is_named_in_one_line(tmp_path: Path) -> None:
    # A bad batch size and a missing model dir: both named, so one restart fixes both.
    with pytest.raises(SettingsError) as err:
        load_settings({"CLICKSCORE_BATCH_SIZE": "0", "CLICKSCORE_WEB_PORT": "http"})
    message = str(err.value)
    assert "\n" not in message
    parts = sorted(message.split("; "))
    assert len(parts) == 3, message
    assert parts[0] == "CLICKSCORE_BATCH_SIZE=0: must be >= 1"
    assert parts[1] == "CLICKSCORE_MODEL_DIR=: required, not set"
    assert parts[2].startswith("CLICKSCORE_WEB_PORT=http: ")


def test_every_cross_field_problem_is_named(model_dir: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(_env(model_dir, SECURITY_PROTOCOL="SASL_SSL"))
    assert str(err.value) == (
        "CLICKSCORE_SASL_USERNAME=: required with SASL_SSL; "
        "CLICKSCORE_SASL_PASSWORD=: required with SASL_SSL"
    )


def test_unknown_variables_are_named_with_the_closest_setting() -> None:
    warnings = unknown_variables(
        {
            "CLICKSCORE_BATCHSIZE": "10",
            "clickscore_log_levl": "debug",
            "CLICKSCORE_WHATEVER": "1",
            "CLICKSCORE_BATCH_SIZE": "10",  # a real setting: no warning
            "CLICKSCORE_KAFKA_PORT": "9092",  # read by deploy/local/kafka.sh: no warning
            "PATH": "/usr/bin",
        }
    )
    assert warnings == [
        "CLICKSCORE_BATCHSIZE is not a setting and is ignored "
        "(did you mean CLICKSCORE_BATCH_SIZE?)",
        "CLICKSCORE_LOG_LEVL is not a setting and is ignored (did you mean CLICKSCORE_LOG_LEVEL?)",
        "CLICKSCORE_WHATEVER is not a setting and is ignored",
    ]


def test_every_setting_is_a_known_variable() -> None:
    env = {f"CLICKSCORE_{name.upper()}": "x" for name in Settings.model_fields}
    assert unknown_variables(env) == []


def test_cross_field_problems_are_named_beside_field_problems(model_dir: Path) -> None:
    # pydantic skips the model validator when a field fails; the missing credentials still show.
    with pytest.raises(SettingsError) as err:
        load_settings(_env(model_dir, SECURITY_PROTOCOL="SASL_SSL", BATCH_SIZE="0"))
    assert str(err.value) == (
        "CLICKSCORE_BATCH_SIZE=0: must be >= 1; "
        "CLICKSCORE_SASL_USERNAME=: required with SASL_SSL; "
        "CLICKSCORE_SASL_PASSWORD=: required with SASL_SSL"
    )


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        ({"PSEUDONYMIZE_KEY": "REPLACE-ME"},
         "CLICKSCORE_PSEUDONYMIZE_KEY=**********: the REPLACE-ME placeholder, not a secret"),
        ({"PSEUDONYMIZE_KEY": "x" * 31},
         "CLICKSCORE_PSEUDONYMIZE_KEY=**********: shorter than 32 characters"),
        ({"SECURITY_PROTOCOL": "SASL_SSL", "SASL_USERNAME": "u", "SASL_PASSWORD": "REPLACE-ME"},
         "CLICKSCORE_SASL_PASSWORD=**********: the REPLACE-ME placeholder, not a secret"),
        ({"REQUIRE_PSEUDONYMIZATION": "true"},
         "CLICKSCORE_PSEUDONYMIZE_KEY=: required with CLICKSCORE_REQUIRE_PSEUDONYMIZATION=true"),
    ],
)  # fmt: skip
def test_placeholder_short_or_missing_keys_are_refused_naming_the_variable(
    model_dir: Path, extra: dict[str, str], line: str
) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(_env(model_dir, **extra))
    assert str(err.value) == line


def test_a_real_key_passes_the_mandatory_pseudonymization(model_dir: Path) -> None:
    key = "0123456789abcdef" * 4
    s = load_settings(_env(model_dir, REQUIRE_PSEUDONYMIZATION="true", PSEUDONYMIZE_KEY=key))
    assert s.require_pseudonymization and s.has_pseudonym_key


def test_sasl_plaintext_with_plain_is_warned_about(model_dir: Path) -> None:
    sasl = {"SASL_USERNAME": "u", "SASL_PASSWORD": "p" * 12}
    clear = load_settings(
        _env(model_dir, SECURITY_PROTOCOL="SASL_PLAINTEXT", SASL_MECHANISM="PLAIN", **sasl)
    )
    (line,) = clear.warnings()
    assert "CLICKSCORE_SECURITY_PROTOCOL=SASL_PLAINTEXT" in line and "clear text" in line
    for proto, mech in (("SASL_SSL", "PLAIN"), ("SASL_PLAINTEXT", "SCRAM-SHA-512")):
        s = load_settings(_env(model_dir, SECURITY_PROTOCOL=proto, SASL_MECHANISM=mech, **sasl))
        assert s.warnings() == []


def test_dead_letter_retention_defaults_to_two_weeks(model_dir: Path) -> None:
    assert load_settings(_env(model_dir)).dlq_retention_ms == 14 * 24 * 3_600_000
    with pytest.raises(SettingsError, match="CLICKSCORE_DLQ_RETENTION_HOURS=0: must be > 0"):
        load_settings(_env(model_dir, DLQ_RETENTION_HOURS="0"))


def test_state_retention_defaults_to_90_days_and_warns_below_the_churn_idle_time(
    model_dir: Path,
) -> None:
    assert load_settings(_env(model_dir)).state_retention_ms == 90 * 24 * 3_600_000
    assert load_settings(_env(model_dir, STATE_RETENTION_HOURS="0")).state_retention_ms == 0
    with pytest.raises(SettingsError, match="CLICKSCORE_STATE_RETENTION_HOURS=-1: must be >= 0"):
        load_settings(_env(model_dir, STATE_RETENTION_HOURS="-1"))
    (line,) = load_settings(_env(model_dir, STATE_RETENTION_HOURS="0.2")).warnings()  # 720 s
    assert "CLICKSCORE_STATE_RETENTION_HOURS=0.2 is not longer than" in line
    assert load_settings(_env(model_dir, STATE_RETENTION_HOURS="0.3")).warnings() == []


def test_commit_every_reaches_fausts_setting(model_dir: Path) -> None:
    from worker.runtime.app import _faust_app

    s = load_settings(_env(model_dir, COMMIT_EVERY="123"))
    assert (s.commit_every, load_settings(_env(model_dir)).commit_every) == (123, 10_000)
    assert _faust_app(s).conf.broker_commit_every == 123
