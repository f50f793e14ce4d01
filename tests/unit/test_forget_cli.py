"""``python -m worker forget``: what it refuses before it talks to Kafka (exit 2, one line)."""

from __future__ import annotations

import sys

import pytest

from worker.cli import main


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["forget", ""], "USER must be 1..256 bytes"),
        (["forget", "x" * 257], "USER must be 1..256 bytes"),
        (["forget", "u1", "--topic", "no spaces"], "--topic='no spaces': not a legal Kafka topic"),
    ],
)
def test_bad_arguments_exit_2_naming_what_is_wrong(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["worker"])  # main() replaces it; restored after the test
    assert main(argv) == 2
    assert words in capsys.readouterr().err
