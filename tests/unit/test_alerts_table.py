"""The live alerts table keeps the model version and the event time whole on a narrow screen."""

from __future__ import annotations

from rich.console import Console

from worker.tools.alerts_viewer import _table

ALERT = {
    "alert_type": "propensity",
    "user_id": "u000042",
    "score": 0.91,
    "threshold": 0.5,
    "model_version": "cnnrnn-20261202T051054Z-e71f3342",
    "trigger": "event",
    "event_time": "2026-01-05T02:16:16.151Z",
    "emitted_at": "2026-01-05T02:16:17.000Z",
}


def _column(text: str, index: int) -> str:
    """A column's cells joined over the rows' wrapped lines (the header row left out)."""
    rows = [line.split("│") for line in text.splitlines() if line.startswith("│")]
    return "".join(cells[index + 1].strip() for cells in rows if len(cells) > index + 1)


def test_model_version_and_event_time_are_never_cut() -> None:
    console = Console(width=80, record=True, force_terminal=False)
    console.print(_table([ALERT], "1 alerts"))
    text = console.export_text()
    assert "…" not in text
    assert _column(text, 4) == ALERT["model_version"]
    assert _column(text, 6) == ALERT["event_time"]
