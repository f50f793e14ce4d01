"""deploy/local/kafka.sh: start is idempotent, status tells the truth, stop leaves nothing behind,
and each way of failing says why in one line."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.kafka_io import KAFKA_SH, LocalKafka, bootstrap_of, kafka_sh


def _port_listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.kafka
def test_start_twice_status_stop(tmp_path: Path) -> None:
    state = tmp_path / "kafka"
    kafka = LocalKafka.start(state)
    pid = int((state / "node-1" / "pid").read_text())
    port = int(kafka.bootstrap.rsplit(":", 1)[1])
    try:
        assert _alive(pid) and _port_listening(port)

        again = kafka_sh("start", "--dir", str(state))
        assert "already running" in again.stderr
        assert bootstrap_of(again.stdout) == kafka.bootstrap
        assert int((state / "node-1" / "pid").read_text()) == pid  # no second broker

        status = kafka.status()
        assert status.returncode == 0
        assert f"running pid {pid} port {port}" in status.stdout
    finally:
        kafka.stop()
    assert not _alive(pid)
    assert not _port_listening(port)
    stopped = kafka.status()
    assert stopped.returncode == 1 and "stopped" in stopped.stdout

    # A node that cannot start (here: a broken node.id) fails the start with its log's tail.
    props = state / "node-1" / "server.properties"
    props.write_text(props.read_text().replace("node.id=1", "node.id=not-a-number"))
    failed = kafka_sh("start", "--dir", str(state), check=False)
    assert failed.returncode != 0
    assert "node 1 exited during start" in failed.stderr
    assert "Invalid value not-a-number" in failed.stderr  # the log's error line names the cause
    assert not list(state.glob("node-*/pid"))


def _path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH holding every command of /usr/bin and /bin except ``missing``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for source in (Path("/usr/bin"), Path("/bin")):
        for tool in source.iterdir():
            link = bin_dir / tool.name
            if tool.name not in missing and not link.exists():
                link.symlink_to(tool)
    return str(bin_dir)


def _run_with_env(tmp_path: Path, **env: str) -> tuple[int, str]:
    done = kafka_sh("start", "--dir", str(tmp_path / "kafka"), check=False, env=env)
    return done.returncode, done.stderr


def test_no_java_is_named(tmp_path: Path) -> None:
    code, err = _run_with_env(tmp_path, PATH=_path_without(tmp_path, "java"))
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("kafka.sh: 'java' not found")


def test_no_maven_and_no_jars_is_named(tmp_path: Path) -> None:
    code, err = _run_with_env(
        tmp_path, PATH=_path_without(tmp_path, "mvn"), CLICKSCORE_CACHE=str(tmp_path / "empty")
    )
    assert code == 1
    assert "no cached Kafka jars" in err and "'mvn' is not installed" in err


def test_pinned_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = _run_with_env(tmp_path, CLICKSCORE_KAFKA_PORT=str(port))
    assert code == 1
    assert f"port {port} (from CLICKSCORE_KAFKA_PORT={port}) is in use" in err
    assert not (tmp_path / "kafka" / "cluster.env").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["start", "--brokers", "2"], "--brokers must be 1 or 3"),
        (["start", "--bogus"], "unknown option '--bogus'"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["kill", "--node", "1"], "no Kafka set up in"),
        (["start", "--authorizer"], "--authorizer needs --security sasl_ssl"),
    ],
)
def test_usage_errors_are_named(tmp_path: Path, args: list[str], message: str) -> None:
    done = kafka_sh(*args, "--dir", str(tmp_path / "kafka"), check=False)
    assert done.returncode == 1
    assert message in done.stderr


def test_help_lists_every_command() -> None:
    done = kafka_sh("--help")
    for command in ("start", "stop", "status", "kill", "restart"):
        assert f"  {command} " in done.stdout
    assert os.access(KAFKA_SH, os.X_OK)
