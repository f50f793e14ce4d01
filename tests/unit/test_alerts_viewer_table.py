"""The alerts viewer's table shows user ids as they are: rich markup in them is text."""

from __future__ import annotations

from rich.console import Console

from worker.tools.alerts_viewer import _table


def test_markup_in_a_user_id_is_printed_literally() -> None:
    users = ["[/]", "[bold red]x[/bold red]", "[link=http://evil]y"]
    alerts = [{"alert_type": "churn", "user_id": u, "score": 0.9, "threshold": 0.5} for u in users]
    console = Console(record=True, width=200, color_system=None)
    console.print(_table(alerts, "3 alerts"))
    text = console.export_text()
    for user in users:
        assert user in text
