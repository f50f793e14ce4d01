"""Security: a SASL_SSL + SCRAM-SHA-512 broker (TLS from a throwaway CA, kafka.sh --security).

The worker scores over it with the right credentials; with a wrong password or a CA that does not
sign the broker's certificate it stops at start, non-zero, with one line naming the cause. Secrets
never reach its log or /metrics, no user id is a metric label, and with CLICKSCORE_PSEUDONYMIZE_KEY
set no raw user id leaves on the alert (or score) topics. The broker runs KRaft's StandardAuthorizer
(kafka.sh --authorizer): the worker's user is granted every operation on every topic and group,
and one test denies it WRITE on an alerts topic (the worker stops before committing; after the
grant a restarted worker delivers every alert). One broker for the module; the two refused starts
end within seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from prometheus_client.parser import text_string_to_metric_families

import schemas
from tests.e2e.worker_process import ROOT, WorkerProcess, counter, own_topics, worker_env
from tests.kafka_io import kafka_sh, produce
from tests.worker_artifacts import keyed, make_events, shared_artifact
from worker.settings import load_kafka

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PSEUDONYM_KEY = "pk-" + uuid.uuid4().hex  # random per run, so a grep hit cannot be a coincidence
N_EVENTS, N_USERS = 120, 12


class SecureKafka:
    """The secured broker: bootstrap, state dir, and the client settings kafka.sh printed."""

    def __init__(self, state_dir: Path, stdout: str) -> None:
        self.state_dir = state_dir
        lines = dict(line.split("=", 1) for line in stdout.strip().splitlines() if "=" in line)
        self.bootstrap = lines["KAFKA_BOOTSTRAP"]
        self.password = lines["KAFKA_SASL_PASSWORD"]
        self.client_env = {f"CLICKSCORE_{k[len('KAFKA_') :]}": v for k, v in lines.items()}
        self.client_env.pop("CLICKSCORE_BOOTSTRAP")

    def librdkafka(self) -> dict[str, str]:
        """Client settings for confluent-kafka, read the way the tools read them."""
        return load_kafka(self.bootstrap, self.client_env).librdkafka()

    def admin(self) -> AdminClient:
        """An AdminClient as the super user ``admin`` (its password is only in secrets.env)."""
        secrets = (self.state_dir / "secrets.env").read_text().splitlines()
        password = dict(line.split("=", 1) for line in secrets)["ADMIN_PASSWORD"]
        return AdminClient(
            {**self.librdkafka(), "sasl.username": "admin", "sasl.password": password}
        )


def _acl(
    kind: ResourceType, name: str, op: AclOperation, permission: AclPermissionType
) -> AclBinding:
    """One ACL for the worker's user, from any host."""
    return AclBinding(
        kind, name, ResourcePatternType.LITERAL, "User:clickscore", "*", op, permission
    )


def _grant_all(admin: AdminClient) -> None:
    """The worker's user may do anything on every topic, group and the cluster (nothing else)."""
    allow = AclPermissionType.ALLOW
    acls = [
        _acl(ResourceType.TOPIC, "*", AclOperation.ALL, allow),
        _acl(ResourceType.GROUP, "*", AclOperation.ALL, allow),
        _acl(ResourceType.BROKER, "kafka-cluster", AclOperation.ALL, allow),
    ]
    for future in admin.create_acls(acls).values():
        future.result(timeout=30)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    state = tmp_path_factory.mktemp("kafka-sasl-ssl")
    done = kafka_sh("start", "--security", "sasl_ssl", "--authorizer", "--dir", str(state))
    try:
        kafka = SecureKafka(state, done.stdout)
        _grant_all(kafka.admin())
        yield kafka
    finally:
        kafka_sh("stop", "--dir", str(state))


def _env(secure: SecureKafka, tmp: Path, **overrides: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    env = worker_env(
        secure.bootstrap,
        shared_artifact(propensity=0.0, churn=0.0),  # thresholds 0: every user gets alerts
        tmp / f"data-{tag}",
        group_id=f"cs-{tag}",
        partitions=2,
        batch_size=32,
        store="memory://",
        **own_topics(tag),
        pseudonymize_key=PSEUDONYM_KEY,
    )
    return {**env, **secure.client_env, **overrides}


def _consume(secure: SecureKafka, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    consumer = Consumer(
        {
            "group.id": f"t-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            **secure.librdkafka(),
        }
    )
    consumer.subscribe([topic])
    got: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + 60
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                assert err.code() == KafkaError._PARTITION_EOF, str(err)
                continue
            got.append((msg.key() or b"", msg.value() or b""))
    finally:
        consumer.close()
    return got


def test_worker_scores_over_sasl_ssl_and_leaks_no_secret_or_user_id(
    secure: SecureKafka, tmp_path: Path
) -> None:
    env = _env(secure, tmp_path)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    events = make_events(N_EVENTS, users=N_USERS, seed=5, prefix="sec")
    users = sorted({e.user_id for e in events})
    try:
        worker.wait_ready()
        produce(
            secure.bootstrap, env["CLICKSCORE_EVENTS_TOPIC"], keyed(events), **secure.librdkafka()
        )
        m = worker.wait_metric(lambda m: counter(m, "clickscore_events_scored_total") >= N_EVENTS)
        assert counter(m, "clickscore_events_scored_total") == N_EVENTS
        scrape = worker.get("/metrics")[1].decode()
        alerts = {
            kind: _consume(secure, env[f"CLICKSCORE_{kind.upper()}_TOPIC"], len(users))
            for kind in ("propensity", "churn")
        }
        scores = _consume(secure, env["CLICKSCORE_SCORES_TOPIC"], N_EVENTS)
    finally:
        assert worker.stop() == 0
    log = worker.log_path.read_text(errors="replace")

    # Secrets: neither the SASL password nor the pseudonymize key in the log or on /metrics.
    for secret in (secure.password, PSEUDONYM_KEY):
        assert secret not in log
        assert secret not in scrape
    assert "Traceback" not in log

    # No user id (raw or pseudonym) is ever a metric label value.
    pseudonyms = {
        hmac.new(PSEUDONYM_KEY.encode(), u.encode(), hashlib.sha256).hexdigest(): u for u in users
    }
    label_values = {
        value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        for value in sample.labels.values()
    }
    assert not label_values & (set(users) | set(pseudonyms))

    # Alerts: one per user and type, keyed and labelled by the pseudonym; no raw id anywhere.
    for kind, records in alerts.items():
        assert len(records) == len(users), kind
        for key, value in records:
            doc = json.loads(value)
            schemas.validate("alert", doc)
            assert doc["user_id_pseudonymized"] is True
            assert key.decode() == doc["user_id"] and doc["user_id"] in pseudonyms
            _assert_no_raw_id(key + value, users)
        assert {pseudonyms[json.loads(v)["user_id"]] for _, v in records} == set(users)
    assert len(scores) == N_EVENTS
    for key, value in scores:
        _assert_no_raw_id(key + value, users)


def _assert_no_raw_id(raw: bytes, users: list[str]) -> None:
    # User ids look like "u7": match them as JSON strings so "u1" does not hit inside "u11" or hex.
    for user in users:
        assert f'"{user}"'.encode() not in raw and raw != user.encode(), user


def _refused_start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_wrong_password_stops_the_start_with_one_line(secure: SecureKafka, tmp_path: Path) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    done = _refused_start(_env(secure, tmp_path, CLICKSCORE_SASL_PASSWORD=wrong))
    out = done.stdout + done.stderr
    assert done.returncode == 4, out
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("clickscore worker: CLICKSCORE_SASL_USERNAME=clickscore")
    assert "CLICKSCORE_SASL_PASSWORD" in last and "refused the credentials" in last
    assert "Authentication failed" in last
    assert wrong not in out and secure.password not in out and PSEUDONYM_KEY not in out
    assert "Traceback" not in out


def test_untrusted_certificate_stops_the_start_with_one_line(
    secure: SecureKafka, tmp_path: Path
) -> None:
    # A real CA bundle that does not hold the throwaway CA: the broker's certificate is untrusted.
    done = _refused_start(_env(secure, tmp_path, CLICKSCORE_SSL_CA_FILE=certifi.where()))
    out = done.stdout + done.stderr
    assert done.returncode == 4, out
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"clickscore worker: CLICKSCORE_SSL_CA_FILE={certifi.where()}:")
    assert "certificate verify failed" in last
    assert secure.password not in out and "Traceback" not in out


def test_the_secured_broker_has_no_plaintext_way_in(secure: SecureKafka) -> None:
    # The one client listener speaks SASL_SSL: a PLAINTEXT client gets no metadata at all.
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": secure.bootstrap, "log_level": 0})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    props = (secure.state_dir / "node-1" / "server.properties").read_text()
    assert "listeners=SASL_SSL://" in props and "PLAINTEXT://" not in props
    assert secure.password not in props  # the broker holds only SCRAM hashes of client passwords


def _committed(secure: SecureKafka, group: str, topic: str) -> int:
    consumer = Consumer({**secure.librdkafka(), "group.id": group})
    try:
        (tp,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return int(tp.offset)  # negative: nothing committed
    finally:
        consumer.close()


def test_an_alerts_topic_the_acls_deny_stops_the_commit_and_nothing_is_lost(
    secure: SecureKafka, tmp_path: Path
) -> None:
    # The worker's user may not WRITE to the propensity alerts topic (a DENY beats the ALLOW on
    # "*"). As for a refused send (test_refused_send.py): exit 70 before any commit covering the
    # batch; once the ACL is fixed a restarted worker (same data dir and group) gets the events
    # again and every user's alert arrives.
    env = {**_env(secure, tmp_path), "CLICKSCORE_PARTITIONS": "1", "CLICKSCORE_SCORES_TOPIC": ""}
    alerts, events_topic = env["CLICKSCORE_PROPENSITY_TOPIC"], env["CLICKSCORE_EVENTS_TOPIC"]
    deny = _acl(ResourceType.TOPIC, alerts, AclOperation.WRITE, AclPermissionType.DENY)
    admin = secure.admin()
    admin.create_acls([deny])[deny].result(timeout=30)
    events = make_events(10, users=5, seed=21, prefix="acl")
    worker = WorkerProcess(env, tmp_path / "denied.log")
    try:
        worker.wait_ready()
        produce(secure.bootstrap, events_topic, keyed(events), **secure.librdkafka())
        worker.proc.wait(timeout=90)  # before the fix it ran on, having committed
    finally:
        code = worker.stop()
    assert code == 70, worker.log_tail()
    assert "TopicAuthorizationFailed" in worker.log_tail(20_000), worker.log_tail()
    assert _committed(secure, env["CLICKSCORE_GROUP_ID"], events_topic) < len(events)

    gone = AclBindingFilter(
        ResourceType.TOPIC, alerts, ResourcePatternType.LITERAL, "User:clickscore", "*",
        AclOperation.WRITE, AclPermissionType.DENY,
    )  # fmt: skip
    admin.delete_acls([gone])[gone].result(timeout=30)
    time.sleep(1)  # every node applies ACL changes from the metadata log
    again = WorkerProcess(env, tmp_path / "granted.log")
    users = {e.user_id for e in events}
    try:
        again.wait_ready()
        m = again.wait_metric(
            lambda m: (
                counter(m, "clickscore_events_scored_total")
                + counter(m, "clickscore_events_duplicate_total")
                >= len(events)
            )
        )
        got = _consume(secure, alerts, len(users))
    finally:
        assert again.stop() == 0, again.log_tail()
    assert {pseudo for pseudo in (json.loads(v)["user_id"] for _, v in got)} == {
        hmac.new(PSEUDONYM_KEY.encode(), u.encode(), hashlib.sha256).hexdigest() for u in users
    }
    assert counter(m, "clickscore_alerts_emitted_total") >= len(users)
    assert _committed(secure, env["CLICKSCORE_GROUP_ID"], events_topic) == len(events)
